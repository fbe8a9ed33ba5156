//! The whole storage conformance suite on SQLite metadata and blobs in a real S3-compatible
//! bucket (Garage, started by `scripts/s3-server.sh run`, as `make test` does), plus what is
//! S3-specific: the layout marker lives in the bucket, and a bucket written by a newer build or
//! reached with a wrong secret is refused when the store opens. Skips without
//! `TANDEM_TEST_S3_URL`, unless `TANDEM_REQUIRE_S3=1` (CI), which makes that a failure.

use bytes::Bytes;
use tandem_store::{conformance, BlobStore, S3Options, Store, StoreError, FORMAT_MARKER_KEY};

/// A fresh prefix in the test bucket, or `None` (skip).
fn s3_url(tag: &str) -> Option<String> {
    let Ok(base) = std::env::var("TANDEM_TEST_S3_URL") else {
        assert!(
            std::env::var("TANDEM_REQUIRE_S3").as_deref() != Ok("1"),
            "TANDEM_REQUIRE_S3=1 but TANDEM_TEST_S3_URL is not set"
        );
        println!("skipped: no TANDEM_TEST_S3_URL (run through scripts/s3-server.sh run)");
        return None;
    };
    Some(format!(
        "{}/store-{tag}-{}",
        base.trim_end_matches('/'),
        uuid::Uuid::new_v4().simple()
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_on_sqlite_and_s3() {
    let Some(url) = s3_url("conf") else { return };
    let dir = tempfile::tempdir().unwrap();
    let meta = format!("sqlite://{}", dir.path().join("tandem.db").display());
    let store = Store::open(&meta, &url).await.expect("open sqlite + s3");
    conformance::run_all(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bucket_carries_the_layout_marker_and_refuses_what_it_cannot_read() {
    let Some(url) = s3_url("marker") else { return };
    let s3 = S3Options::from_env();
    let blobs = BlobStore::open(&url, &s3).await.expect("open");
    blobs.ping().await.expect("the marker was written");
    blobs.put("a/b", Bytes::from_static(b"x")).await.unwrap();
    assert_eq!(
        blobs.list("").await.unwrap(),
        ["a/b"],
        "the marker is not listed"
    );

    // A newer layout in the bucket is refused.
    let raw = tandem_objects::open_url(&url, &s3).unwrap();
    raw.store
        .put(
            &object_store::path::Path::from(FORMAT_MARKER_KEY),
            Bytes::from_static(br#"{"format_version": 99}"#).into(),
        )
        .await
        .unwrap();
    let err = BlobStore::open(&url, &s3).await.expect_err("newer layout");
    assert!(
        matches!(err, StoreError::FormatTooNew { found: 99, .. }),
        "{err:?}"
    );

    // A wrong secret fails at open, with the server's reason and without the secret.
    let wrong = S3Options {
        secret_access_key: Some("not-the-secret".into()),
        ..s3.clone()
    };
    let other = s3_url("wrong").unwrap();
    let err = BlobStore::open(&other, &wrong)
        .await
        .expect_err("wrong secret");
    let text = err.to_string();
    assert!(!text.contains("not-the-secret"), "{text}");
    println!("wrong secret: {text}");
}
