//! Parsed Custom Speech models of deployed endpoints, by endpoint id: parsing an artifact
//! costs more than a recognition's lookup, so `?cid=` requests share one copy. Bounded (least
//! recently used goes first) and invalidated when an endpoint is deleted. The store stays the
//! truth: callers check that the endpoint exists before they trust an entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tandem_core::ResourceId;
use tandem_engines::AdaptedModel;
use uuid::Uuid;

/// Endpoints whose models are kept parsed.
pub(crate) const MODEL_CACHE_CAPACITY: usize = 32;

struct Entry {
    resource: ResourceId,
    /// The custom model the endpoint served when cached: an endpoint re-pointed (PATCH, maybe
    /// by another process) misses the cache and loads its new model.
    model_id: Uuid,
    model: Arc<AdaptedModel>,
    used: u64,
}

/// A bounded, least-recently-used map from endpoint id to its parsed model.
pub(crate) struct ModelCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Uuid, Entry>,
    clock: u64,
}

impl ModelCache {
    /// An empty cache holding at most `capacity` models (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The parsed model `model_id` of `endpoint`, if cached for that resource and model.
    pub fn get(
        &self,
        resource: ResourceId,
        endpoint: Uuid,
        model_id: Uuid,
    ) -> Option<Arc<AdaptedModel>> {
        let mut inner = self.lock();
        inner.clock += 1;
        let now = inner.clock;
        let e = inner.entries.get_mut(&endpoint)?;
        if e.resource != resource || e.model_id != model_id {
            return None;
        }
        e.used = now;
        Some(e.model.clone())
    }

    /// Caches `model` (the custom model `model_id`) for `endpoint`, evicting the least recently
    /// used entry when full.
    pub fn insert(
        &self,
        resource: ResourceId,
        endpoint: Uuid,
        model_id: Uuid,
        model: Arc<AdaptedModel>,
    ) {
        let mut inner = self.lock();
        inner.clock += 1;
        let used = inner.clock;
        if !inner.entries.contains_key(&endpoint) && inner.entries.len() >= self.capacity {
            if let Some(oldest) = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(id, _)| *id)
            {
                inner.entries.remove(&oldest);
            }
        }
        inner.entries.insert(
            endpoint,
            Entry {
                resource,
                model_id,
                model,
                used,
            },
        );
    }

    /// Forgets `endpoint` (deleted).
    pub fn remove(&self, endpoint: Uuid) {
        self.lock().entries.remove(&endpoint);
    }

    /// How many models are cached.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_engines::adapt::Vocabulary;

    /// A byte-level vocabulary: tokens 0..256 are the bytes, then sot and eot.
    struct Bytes;

    impl Vocabulary for Bytes {
        fn model_name(&self) -> &str {
            "test"
        }
        fn model_sha256(&self) -> &str {
            ""
        }
        fn n_vocab(&self) -> u32 {
            258
        }
        fn sot(&self) -> u32 {
            257
        }
        fn eot(&self) -> u32 {
            256
        }
        fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
            (id < 256).then(|| vec![id as u8])
        }
    }

    fn model() -> Arc<AdaptedModel> {
        Arc::new(AdaptedModel::train(&["a small domain text"], &[], &Bytes).unwrap())
    }

    #[test]
    fn bounded_lru_per_resource() {
        let (r1, r2) = (ResourceId::random(), ResourceId::random());
        let cache = ModelCache::new(2);
        let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let m = model();
        let ma = Uuid::new_v4();
        cache.insert(r1, a, ma, m.clone());
        cache.insert(r1, b, ma, m.clone());
        assert!(cache.get(r1, a, ma).is_some(), "a is now the most recent");
        assert!(
            cache.get(r2, a, ma).is_none(),
            "another resource never sees it"
        );
        cache.insert(r1, c, ma, m.clone());
        assert_eq!(cache.len(), 2);
        assert!(
            cache.get(r1, b, ma).is_none(),
            "b was the least recently used"
        );
        assert!(cache.get(r1, a, ma).is_some() && cache.get(r1, c, ma).is_some());
        cache.remove(a);
        assert!(cache.get(r1, a, ma).is_none());
        cache.insert(r1, c, ma, m);
        assert_eq!(cache.len(), 1, "re-inserting replaces");
        assert!(
            cache.get(r1, c, Uuid::new_v4()).is_none(),
            "an endpoint re-pointed at another model misses"
        );
    }
}
