//! Behaviour specific to the SQLite + local-filesystem backends: durability settings, format
//! versions, URLs, and several handles (processes) on one database.

use bytes::Bytes;
use tandem_core::{KeySlot, RegionName, ResourceId, ResourceKey};
use tandem_store::{
    BlobStore, MetaStore, NewResource, SqliteMetaStore, Store, StoreError, BLOB_FORMAT_VERSION,
    FORMAT_MARKER_KEY, METADATA_FORMAT_VERSION,
};

fn urls(dir: &tempfile::TempDir) -> (String, String) {
    (
        format!("sqlite://{}", dir.path().join("tandem.db").display()),
        format!("file://{}", dir.path().join("blobs").display()),
    )
}

fn resource(region: &str, name: &str) -> NewResource {
    NewResource {
        id: ResourceId::random(),
        region: RegionName::new(region).unwrap(),
        name: name.into(),
        key1: ResourceKey::generate().hash(),
        key2: ResourceKey::generate().hash(),
        concurrency_limit: 10,
    }
}

#[tokio::test]
async fn sqlite_runs_with_durable_pragmas() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteMetaStore::open(&urls(&dir).0).await.unwrap();
    let mut conn = db.pool().acquire().await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(fk, 1, "foreign_keys on");
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(busy, 5000, "busy_timeout 5 s");
    assert_eq!(db.schema_version().await.unwrap(), METADATA_FORMAT_VERSION);
}

#[tokio::test]
async fn newer_metadata_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = urls(&dir).0;
    let db = SqliteMetaStore::open(&url).await.unwrap();
    sqlx::query("UPDATE tandem_meta SET format_version = 99")
        .execute(db.pool())
        .await
        .unwrap();
    db.pool().close().await;
    let err = SqliteMetaStore::open(&url)
        .await
        .expect_err("newer format must be refused");
    assert!(
        matches!(
            err,
            StoreError::FormatTooNew {
                found: 99,
                supported: METADATA_FORMAT_VERSION
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn blob_format_marker_is_written_and_newer_refused() {
    let dir = tempfile::tempdir().unwrap();
    let url = urls(&dir).1;
    BlobStore::from_url(&url).unwrap();
    let marker = dir.path().join("blobs").join(FORMAT_MARKER_KEY);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    assert_eq!(v["format_version"], BLOB_FORMAT_VERSION);
    BlobStore::from_url(&url).expect("same version reopens");
    std::fs::write(&marker, br#"{"format_version":2}"#).unwrap();
    let err = BlobStore::from_url(&url).expect_err("newer layout must be refused");
    assert!(
        matches!(
            err,
            StoreError::FormatTooNew {
                found: 2,
                supported: 1
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn unsupported_urls_say_what_is_supported() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, blobs) = urls(&dir);
    for (m, b) in [
        ("mysql://localhost/tandem", blobs.as_str()),
        (meta.as_str(), "gs://bucket/prefix"),
        (meta.as_str(), "file://relative/path"),
    ] {
        let err = Store::open(m, b).await.expect_err("unsupported URL");
        match err {
            StoreError::UnsupportedUrl { supported, .. } => assert!(!supported.is_empty()),
            other => panic!("{m} {b}: expected UnsupportedUrl, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_second_handle_sees_writes_at_once() {
    // Two pools on one file behave like the CLI and the server: no caching, no restart.
    let dir = tempfile::tempdir().unwrap();
    let url = urls(&dir).0;
    let (a, b) = tokio::join!(SqliteMetaStore::open(&url), SqliteMetaStore::open(&url));
    let (a, b) = (a.expect("open a"), b.expect("open b"));
    let region = RegionName::new("westus").unwrap();
    let r = resource("westus", "shared");
    a.create_resource(r.clone()).await.unwrap();
    assert!(
        b.get_resource(r.id).await.unwrap().is_some(),
        "b sees a's create"
    );
    assert!(b.authenticate(&region, &r.key1).await.unwrap().is_some());
    let new_key = ResourceKey::generate().hash();
    b.set_key(r.id, KeySlot::Key1, new_key).await.unwrap();
    assert!(
        a.authenticate(&region, &r.key1).await.unwrap().is_none(),
        "a sees b's rotation"
    );
    assert!(a.authenticate(&region, &new_key).await.unwrap().is_some());
    b.delete_resource(r.id).await.unwrap();
    assert!(
        a.get_resource(r.id).await.unwrap().is_none(),
        "a sees b's delete"
    );
}

#[tokio::test]
async fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (meta, blobs) = urls(&dir);
    let r = resource("eastus", "kept");
    {
        let s = Store::open(&meta, &blobs).await.unwrap();
        s.meta.create_resource(r.clone()).await.unwrap();
        s.blobs
            .put("a/b", Bytes::from_static(b"kept"))
            .await
            .unwrap();
    }
    let s = Store::open(&meta, &blobs).await.unwrap();
    s.ping().await.unwrap();
    let got = s
        .meta
        .get_resource(r.id)
        .await
        .unwrap()
        .expect("resource survives reopen");
    assert_eq!(got.name, "kept");
    assert_eq!(
        s.blobs.get("a/b").await.unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        s.meta.schema_version().await.unwrap(),
        METADATA_FORMAT_VERSION
    );
}

#[tokio::test]
async fn eight_handles_opening_a_fresh_file_at_once_all_succeed() {
    // Regression: the switch to WAL mode returns SQLITE_BUSY at once to all but one opener.
    for _ in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let url = urls(&dir).0;
        let opens = (0..8).map(|_| SqliteMetaStore::open(&url));
        for (i, r) in futures::future::join_all(opens)
            .await
            .into_iter()
            .enumerate()
        {
            let store = r.unwrap_or_else(|e| panic!("open #{i}: {e}"));
            assert_eq!(
                store.schema_version().await.unwrap(),
                METADATA_FORMAT_VERSION
            );
        }
    }
}

#[tokio::test]
async fn without_migrating_an_older_database_is_refused_until_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let url = urls(&dir).0;
    let err = SqliteMetaStore::open_with(&url, false)
        .await
        .expect_err("a new database needs migrating");
    assert!(
        matches!(err, StoreError::MigrationNeeded { found: 0, required } if required == METADATA_FORMAT_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("tandem migrate"), "{err}");
    let (before, after) = SqliteMetaStore::migrate_url(&url).await.unwrap();
    assert_eq!((before, after), (0, METADATA_FORMAT_VERSION));
    let again = SqliteMetaStore::migrate_url(&url).await.unwrap();
    assert_eq!(again, (METADATA_FORMAT_VERSION, METADATA_FORMAT_VERSION));
    let db = SqliteMetaStore::open_with(&url, false)
        .await
        .expect("migrated");
    assert_eq!(db.schema_version().await.unwrap(), METADATA_FORMAT_VERSION);
}
