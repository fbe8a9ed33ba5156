//! Conformance checks for [`BlobStore`](crate::BlobStore).

use bytes::Bytes;

use super::fresh_prefix;
use crate::{Store, StoreError};

/// Put, get, list and delete; delete is idempotent.
pub async fn blob_put_get_list_delete(store: &Store) {
    let b = &store.blobs;
    let p = fresh_prefix("crud");
    let (k1, k2) = (format!("{p}a.bin"), format!("{p}sub/b.bin"));
    assert_eq!(
        b.get(&k1).await.expect("get missing"),
        None,
        "missing blob is None"
    );
    b.put(&k2, Bytes::from_static(b"two"))
        .await
        .expect("put k2");
    b.put(&k1, Bytes::from_static(b"one"))
        .await
        .expect("put k1");
    b.put(&format!("{p}empty"), Bytes::new())
        .await
        .expect("put empty");
    assert_eq!(
        b.get(&k1).await.expect("get k1").as_deref(),
        Some(&b"one"[..]),
        "k1 reads back"
    );
    assert_eq!(
        b.get(&k2).await.expect("get k2").as_deref(),
        Some(&b"two"[..]),
        "k2 reads back"
    );
    assert_eq!(
        b.get(&format!("{p}empty"))
            .await
            .expect("get empty")
            .as_deref(),
        Some(&b""[..]),
        "empty blob"
    );
    let listed = b.list(&p).await.expect("list");
    assert_eq!(
        listed,
        [k1.clone(), format!("{p}empty"), k2.clone()],
        "list is every key under the prefix, sorted"
    );
    let sizes: Vec<(String, u64)> = b
        .list_meta(&p)
        .await
        .expect("list_meta")
        .into_iter()
        .map(|m| (m.key, m.size))
        .collect();
    assert_eq!(
        sizes,
        [(k1.clone(), 3), (format!("{p}empty"), 0), (k2.clone(), 3)],
        "list_meta lists the same keys with their sizes"
    );
    b.delete(&k1).await.expect("delete");
    b.delete(&k1).await.expect("delete is idempotent");
    assert_eq!(
        b.get(&k1).await.expect("get deleted"),
        None,
        "deleted blob is gone"
    );
    assert_eq!(
        b.list(&p).await.expect("list").len(),
        2,
        "deleted blob is not listed"
    );
    assert!(
        b.list(&fresh_prefix("none"))
            .await
            .expect("list empty")
            .is_empty(),
        "unused prefix lists nothing"
    );
    assert_eq!(
        b.delete_prefix(&format!("{p}sub/"))
            .await
            .expect("delete_prefix"),
        1,
        "delete_prefix counts what it removed"
    );
    assert_eq!(
        b.list(&p).await.expect("list"),
        [format!("{p}empty")],
        "delete_prefix removes only its prefix"
    );
    b.ping().await.expect("ping");
}

/// A second put replaces the value.
pub async fn blob_overwrite(store: &Store) {
    let b = &store.blobs;
    let k = format!("{}x", fresh_prefix("over"));
    b.put(&k, Bytes::from_static(b"first, longer value"))
        .await
        .expect("put 1");
    b.put(&k, Bytes::from_static(b"second"))
        .await
        .expect("put 2");
    assert_eq!(
        b.get(&k).await.expect("get").as_deref(),
        Some(&b"second"[..]),
        "overwrite replaces the whole value"
    );
}

/// Bulk writes: `put_unsynced` then one `sync_bulk`: the blobs read back and list like
/// `put`'s; `sync_bulk` refuses an invalid key and accepts an empty list.
pub async fn blob_bulk_put(store: &Store) {
    let b = &store.blobs;
    let prefix = fresh_prefix("bulk");
    let keys: Vec<String> = (0..5).map(|i| format!("{prefix}d{}/f{i}", i % 2)).collect();
    for (i, k) in keys.iter().enumerate() {
        b.put_unsynced(k, Bytes::from(vec![i as u8; 10 + i]))
            .await
            .expect("put_unsynced");
    }
    b.sync_bulk(&keys).await.expect("sync_bulk");
    b.sync_bulk(&[]).await.expect("sync_bulk of nothing");
    assert!(b.sync_bulk(&["../escape".into()]).await.is_err());
    assert_eq!(b.list(&prefix).await.expect("list").len(), keys.len());
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            b.get(k).await.expect("get").as_deref(),
            Some(&vec![i as u8; 10 + i][..])
        );
    }
}

/// `list` takes a plain string prefix, not only a directory.
pub async fn blob_list_prefix(store: &Store) {
    let b = &store.blobs;
    let p = fresh_prefix("pre");
    for k in ["job-1", "job-2", "other"] {
        b.put(&format!("{p}{k}"), Bytes::from_static(b"."))
            .await
            .expect("put");
    }
    let got = b.list(&format!("{p}job-")).await.expect("list");
    assert_eq!(
        got,
        [format!("{p}job-1"), format!("{p}job-2")],
        "string prefix filters within a directory"
    );
    let all = b.list("").await.expect("list all");
    assert!(
        all.contains(&format!("{p}other")),
        "empty prefix lists everything"
    );
    assert!(
        all.iter().all(|k| !k.starts_with("_tandem")),
        "the store's own objects are hidden"
    );
}

/// Absolute, empty-segment, `..` and reserved keys are `InvalidKey` for every operation.
pub async fn blob_invalid_keys(store: &Store) {
    let b = &store.blobs;
    for bad in [
        "",
        "/abs",
        "a//b",
        "a/",
        "../up",
        "a/../b",
        "a/./b",
        "_tandem/format.json",
        "sp ace",
    ] {
        let data = Bytes::from_static(b"x");
        let check = |what: &str, r: Result<(), StoreError>| {
            assert!(
                matches!(r, Err(StoreError::InvalidKey(_))),
                "{what}({bad:?}) should be InvalidKey, got {r:?}"
            );
        };
        check("put", b.put(bad, data).await);
        check("get", b.get(bad).await.map(|_| ()));
        check("delete", b.delete(bad).await);
    }
}

/// An 8 MiB blob round-trips byte for byte.
pub async fn blob_large(store: &Store) {
    let b = &store.blobs;
    let k = format!("{}large.bin", fresh_prefix("large"));
    let data: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let data = Bytes::from(data);
    b.put(&k, data.clone()).await.expect("put 8 MiB");
    let got = b
        .get(&k)
        .await
        .expect("get 8 MiB")
        .expect("large blob exists");
    assert_eq!(got.len(), data.len(), "large blob length");
    assert!(got == data, "large blob content differs");
}
