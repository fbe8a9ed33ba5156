//! Conformance checks for [`MetaStore`](crate::MetaStore) basics: CRUD, names, regions.

use tandem_core::{KeySlot, ResourceId};

use super::{fresh_region, new_resource, random_hash};
use crate::{Store, StoreError};

/// Create, get (by id and by name), list and delete one resource.
pub async fn create_get_list_delete(store: &Store) {
    let m = &store.meta;
    let region = fresh_region("crud");
    let mut new = new_resource(&region, "alpha");
    new.concurrency_limit = 7;
    let created = m
        .create_resource(new.clone())
        .await
        .expect("create_resource");
    assert_eq!(created.id, new.id, "created id");
    assert_eq!(created.region, region, "created region");
    assert_eq!(created.name, "alpha", "created name");
    assert_eq!(created.concurrency_limit, 7, "created concurrency_limit");
    let age = time::OffsetDateTime::now_utc() - created.created_at;
    assert!(
        age.whole_seconds().abs() < 60,
        "created_at should be now, got {}",
        created.created_at
    );

    let got = m.get_resource(new.id).await.expect("get_resource");
    assert_eq!(
        got.as_ref(),
        Some(&created),
        "get_resource returns what create returned"
    );
    let by_name = m
        .get_resource_by_name(&region, "alpha")
        .await
        .expect("get_resource_by_name");
    assert_eq!(by_name.as_ref(), Some(&created), "get_resource_by_name");

    let second = m
        .create_resource(new_resource(&region, "beta"))
        .await
        .expect("create beta");
    let list = m.list_resources(&region).await.expect("list_resources");
    let names: Vec<_> = list.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["alpha", "beta"],
        "list_resources lists both, oldest first"
    );
    let mut sorted = list.clone();
    sorted.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
    assert_eq!(
        list, sorted,
        "list_resources is ordered by created_at, then name"
    );

    assert!(
        m.delete_resource(new.id).await.expect("delete"),
        "delete of an existing resource returns true"
    );
    assert!(
        !m.delete_resource(new.id).await.expect("delete again"),
        "second delete returns false"
    );
    assert_eq!(
        m.get_resource(new.id).await.expect("get after delete"),
        None,
        "deleted resource is gone"
    );
    assert_eq!(
        m.authenticate(&region, &new.key1)
            .await
            .expect("auth after delete"),
        None,
        "deleted resource's keys stop working"
    );
    let list = m.list_resources(&region).await.expect("list after delete");
    assert_eq!(list, vec![second], "only the undeleted resource is listed");
}

/// A name is unique within a region, and free in another region.
pub async fn name_conflict_per_region(store: &Store) {
    let m = &store.meta;
    let (a, b) = (fresh_region("confa"), fresh_region("confb"));
    m.create_resource(new_resource(&a, "same"))
        .await
        .expect("first create");
    let err = m
        .create_resource(new_resource(&a, "same"))
        .await
        .expect_err("duplicate name in one region must fail");
    assert!(
        matches!(err, StoreError::Conflict { .. }),
        "duplicate name should be Conflict, got {err:?}"
    );
    m.create_resource(new_resource(&b, "same"))
        .await
        .expect("the same name in another region is allowed");
    assert_eq!(
        m.list_resources(&a).await.expect("list a").len(),
        1,
        "failed create left nothing behind"
    );
}

/// Listing and authentication never cross regions.
pub async fn regions_isolated(store: &Store) {
    let m = &store.meta;
    let (a, b) = (fresh_region("isoa"), fresh_region("isob"));
    let ra = new_resource(&a, "one");
    m.create_resource(ra.clone()).await.expect("create in a");
    m.create_resource(new_resource(&b, "two"))
        .await
        .expect("create in b");
    let names = |v: Vec<crate::Resource>| v.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(
        names(m.list_resources(&a).await.expect("list a")),
        ["one"],
        "region a lists only its own"
    );
    assert_eq!(
        names(m.list_resources(&b).await.expect("list b")),
        ["two"],
        "region b lists only its own"
    );
    let (got, slot) = m
        .authenticate(&a, &ra.key1)
        .await
        .expect("auth")
        .expect("key1 authenticates in its region");
    assert_eq!(
        (got.id, slot),
        (ra.id, KeySlot::Key1),
        "authenticate returns the resource and slot"
    );
    let (_, slot) = m
        .authenticate(&a, &ra.key2)
        .await
        .expect("auth")
        .expect("key2 authenticates in its region");
    assert_eq!(slot, KeySlot::Key2, "key2 reports slot Key2");
    assert_eq!(
        m.authenticate(&b, &ra.key1).await.expect("auth b"),
        None,
        "a key must not work in another region"
    );
    assert_eq!(
        m.get_resource_by_name(&b, "one").await.expect("by name"),
        None,
        "names are per region"
    );
    assert_eq!(
        m.authenticate(&a, &random_hash())
            .await
            .expect("auth unknown"),
        None,
        "unknown key fails"
    );
}

/// Operations on a missing resource report `NotFound` or `None`/`false`.
pub async fn not_found_paths(store: &Store) {
    let m = &store.meta;
    let missing = ResourceId::random();
    let region = fresh_region("nf");
    assert_eq!(
        m.get_resource(missing).await.expect("get"),
        None,
        "get of missing id"
    );
    assert_eq!(
        m.get_resource_by_name(&region, "nope")
            .await
            .expect("by name"),
        None,
        "get of missing name"
    );
    assert!(
        m.list_resources(&region).await.expect("list").is_empty(),
        "empty region lists nothing"
    );
    assert!(
        !m.delete_resource(missing).await.expect("delete"),
        "delete of missing id returns false"
    );
    let err = m
        .set_key(missing, KeySlot::Key1, random_hash())
        .await
        .expect_err("set_key on missing");
    assert!(
        matches!(err, StoreError::NotFound { .. }),
        "set_key on missing should be NotFound, got {err:?}"
    );
    let err = m
        .set_concurrency_limit(missing, 5)
        .await
        .expect_err("set limit on missing");
    assert!(
        matches!(err, StoreError::NotFound { .. }),
        "set_concurrency_limit on missing: NotFound, got {err:?}"
    );
    m.ping().await.expect("ping");
    assert!(
        m.schema_version().await.expect("schema_version") >= 1,
        "schema_version is at least 1"
    );
}
