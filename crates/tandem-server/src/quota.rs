//! Per-resource concurrency quotas (Azure's "concurrent request limit", default 100).
//!
//! A request holds a permit from the moment it is authenticated until its response is built;
//! when none is left the caller gets 429 with `Retry-After`. The limit is read from the resource
//! on every request, so a change made by the CLI applies at once. Quotas are per process here;
//! region-wide enforcement across nodes comes with the PostgreSQL backend.

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

/// Held while a request runs; dropping it frees the slot.
pub struct QuotaPermit {
    _permit: OwnedSemaphorePermit,
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
            .map(|p| QuotaPermit { _permit: p })
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
