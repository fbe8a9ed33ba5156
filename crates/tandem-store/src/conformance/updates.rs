//! Conformance checks for [`MetaStore`](crate::MetaStore) updates: keys, limits, concurrency.

use std::collections::HashSet;

use tandem_core::KeySlot;

use super::{fresh_region, new_resource, random_hash};
use crate::{Store, StoreError};

/// Rotating a key: the old hash stops working, the new one works, the other slot is untouched.
pub async fn key_rotation(store: &Store) {
    let m = &store.meta;
    let region = fresh_region("rot");
    let r = new_resource(&region, "rotating");
    m.create_resource(r.clone()).await.expect("create");
    let new1 = random_hash();
    m.set_key(r.id, KeySlot::Key1, new1)
        .await
        .expect("set_key key1");
    assert_eq!(
        m.authenticate(&region, &r.key1).await.expect("auth old"),
        None,
        "old key1 must stop working"
    );
    let got = m
        .authenticate(&region, &new1)
        .await
        .expect("auth new")
        .expect("new key1 must work");
    assert_eq!(
        (got.0.id, got.1),
        (r.id, KeySlot::Key1),
        "new key1 maps to the resource, slot Key1"
    );
    let got = m
        .authenticate(&region, &r.key2)
        .await
        .expect("auth key2")
        .expect("key2 must be unaffected");
    assert_eq!(got.1, KeySlot::Key2, "key2 still reports Key2");
    let new2 = random_hash();
    m.set_key(r.id, KeySlot::Key2, new2)
        .await
        .expect("set_key key2");
    assert_eq!(
        m.authenticate(&region, &r.key2).await.expect("auth old2"),
        None,
        "old key2 must stop working"
    );
    assert!(
        m.authenticate(&region, &new1)
            .await
            .expect("auth")
            .is_some(),
        "key1 unaffected by key2 rotation"
    );
    assert!(
        m.authenticate(&region, &new2)
            .await
            .expect("auth")
            .is_some(),
        "new key2 works"
    );
}

/// The concurrency limit can be changed and is read back.
pub async fn concurrency_limit_update(store: &Store) {
    let m = &store.meta;
    let region = fresh_region("limit");
    let r = new_resource(&region, "limited");
    m.create_resource(r.clone()).await.expect("create");
    for limit in [1, 0, u32::MAX, 250] {
        m.set_concurrency_limit(r.id, limit)
            .await
            .expect("set_concurrency_limit");
        let got = m.get_resource(r.id).await.expect("get").expect("exists");
        assert_eq!(
            got.concurrency_limit, limit,
            "concurrency_limit round-trips"
        );
    }
    let (auth, _) = m
        .authenticate(&region, &r.key1)
        .await
        .expect("auth")
        .expect("auth works");
    assert_eq!(
        auth.concurrency_limit, 250,
        "authenticate sees the new limit at once"
    );
}

/// A key hash identifies at most one resource: reusing one is a `Conflict`.
pub async fn duplicate_key_conflicts(store: &Store) {
    let m = &store.meta;
    let region = fresh_region("dupkey");
    let a = new_resource(&region, "a");
    m.create_resource(a.clone()).await.expect("create a");
    let mut b = new_resource(&region, "b");
    b.key2 = a.key1;
    let err = m
        .create_resource(b.clone())
        .await
        .expect_err("reused key hash must fail");
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "reused key hash: Conflict, got {err:?}"
    );
    assert_eq!(
        m.get_resource(b.id).await.expect("get b"),
        None,
        "failed create is rolled back entirely"
    );
    b.key2 = random_hash();
    m.create_resource(b.clone())
        .await
        .expect("create b with fresh keys");
    let err = m
        .set_key(b.id, KeySlot::Key1, a.key2)
        .await
        .expect_err("set_key to a used hash");
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "set_key to a used hash: Conflict, got {err:?}"
    );
    assert!(
        m.authenticate(&region, &b.key1)
            .await
            .expect("auth")
            .is_some(),
        "failed set_key changed nothing"
    );
}

/// 50 concurrent `create_resource` calls all succeed and are all listed.
pub async fn concurrent_writers(store: &Store) {
    const N: usize = 50;
    let region = fresh_region("conc");
    let tasks = (0..N).map(|i| {
        let meta = store.meta.clone();
        let r = new_resource(&region, &format!("r{i:02}"));
        tokio::spawn(async move { meta.create_resource(r).await })
    });
    let mut ids = HashSet::new();
    for (i, t) in futures::future::join_all(tasks)
        .await
        .into_iter()
        .enumerate()
    {
        let r = t
            .expect("task panicked")
            .unwrap_or_else(|e| panic!("concurrent create {i} failed: {e}"));
        ids.insert(r.id);
    }
    let listed = store.meta.list_resources(&region).await.expect("list");
    assert_eq!(listed.len(), N, "all {N} concurrent creates are listed");
    assert_eq!(
        listed.iter().map(|r| r.id).collect::<HashSet<_>>(),
        ids,
        "listed ids are the created ids"
    );
}
