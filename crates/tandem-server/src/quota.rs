//! Per-resource concurrency quotas (Azure's "concurrent request limit", default 100).
//!
//! A request holds a permit from the moment it is authenticated until its response is built;
//! when none is left the caller gets 429 with `Retry-After`. The limit is read from the resource
//! on every request, so a change made by the CLI applies at once.
//!
//! `quota_scope = "node"` (the default) counts in this process's memory. `"region"` counts in
//! the region's shared store ([`tandem_store::MetaStore::acquire_slot`]: one atomic statement
//! per request, a slot that lapses after [`REGION_SLOT_TTL`] if its node dies), so the limit
//! holds across all nodes of the region.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tandem_core::ResourceId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ApiError;

/// The semaphores of all resources seen by this process.
#[derive(Default)]
pub struct Quotas {
    by_resource: Mutex<HashMap<ResourceId, (u32, Arc<Semaphore>)>>,
}

/// How long a region-wide slot outlives a node that died holding it.
pub const REGION_SLOT_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Held while a request runs; dropping it frees the slot.
pub struct QuotaPermit {
    _permit: Held,
}

/// What a permit holds until dropped.
enum Held {
    Local { _permit: OwnedSemaphorePermit },
    Region { _slot: RegionSlot },
}

/// A slot in the shared store; freed (on a background task) when dropped.
struct RegionSlot {
    store: tandem_store::Store,
    resource: ResourceId,
    slot: uuid::Uuid,
}

impl Drop for RegionSlot {
    fn drop(&mut self) {
        let (store, resource, slot) = (self.store.clone(), self.resource, self.slot);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = store.meta.release_slot(resource, slot).await {
                    tracing::warn!(%resource, error = %e, "could not free a quota slot; it lapses by itself");
                }
            });
        }
    }
}

/// Takes one of `resource`'s `limit` region-wide slots in `store`, for node `node`.
pub async fn try_acquire_region(
    store: &tandem_store::Store,
    node: &str,
    resource: ResourceId,
    limit: u32,
) -> Result<QuotaPermit, ApiError> {
    let slot = uuid::Uuid::new_v4();
    let got = store
        .meta
        .acquire_slot(
            resource,
            limit,
            slot,
            node,
            time::OffsetDateTime::now_utc(),
            REGION_SLOT_TTL,
        )
        .await?;
    if !got {
        return Err(ApiError::TooManyRequests { retry_after: 1 });
    }
    Ok(QuotaPermit {
        _permit: Held::Region {
            _slot: RegionSlot {
                store: store.clone(),
                resource,
                slot,
            },
        },
    })
}

impl Quotas {
    /// Takes one concurrency slot of `resource`, whose limit is `limit`.
    pub fn try_acquire(&self, resource: ResourceId, limit: u32) -> Result<QuotaPermit, ApiError> {
        let sem = {
            let mut map = self.by_resource.lock().expect("quota lock");
            let entry = map
                .entry(resource)
                .or_insert_with(|| (limit, Arc::new(Semaphore::new(limit as usize))));
            if entry.0 != limit {
                // The limit changed: requests in flight keep their permits on the old
                // semaphore; new ones count against the new limit.
                *entry = (limit, Arc::new(Semaphore::new(limit as usize)));
            }
            entry.1.clone()
        };
        sem.try_acquire_owned()
            .map(|p| QuotaPermit {
                _permit: Held::Local { _permit: p },
            })
            .map_err(|_| ApiError::TooManyRequests { retry_after: 1 })
    }

    /// Forgets a deleted resource.
    pub fn forget(&self, resource: ResourceId) {
        self.by_resource
            .lock()
            .expect("quota lock")
            .remove(&resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_is_enforced_and_released() {
        let q = Quotas::default();
        let r = ResourceId::random();
        let a = q.try_acquire(r, 2).unwrap();
        let _b = q.try_acquire(r, 2).unwrap();
        let err = q.try_acquire(r, 2).err().unwrap();
        assert_eq!(err.status().as_u16(), 429);
        drop(a);
        assert!(q.try_acquire(r, 2).is_ok());
    }

    #[test]
    fn resources_are_independent_and_limits_update() {
        let q = Quotas::default();
        let (r1, r2) = (ResourceId::random(), ResourceId::random());
        let _a = q.try_acquire(r1, 1).unwrap();
        assert!(q.try_acquire(r2, 1).is_ok());
        assert!(q.try_acquire(r1, 1).is_err());
        assert!(
            q.try_acquire(r1, 5).is_ok(),
            "a raised limit applies at once"
        );
    }
}
