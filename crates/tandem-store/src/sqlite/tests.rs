//! The export conformance checks against SQLite stores in temporary directories: the pair
//! checks need an empty store to import into, which the shared-store `run_all` cannot give.

use crate::{conformance, Store};

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = format!("sqlite://{}", dir.path().join("meta/tandem.db").display());
    let blobs = format!("file://{}", dir.path().join("blobs").display());
    let store = Store::open(&meta, &blobs).await.expect("open store");
    (dir, store)
}

macro_rules! pair_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_da, a) = fresh().await;
            let (_db, b) = fresh().await;
            conformance::$name(&a, &b).await;
        }
    )*};
}

macro_rules! single_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh().await;
            conformance::$name(&store).await;
        }
    )*};
}

pair_tests!(
    export_round_trip,
    export_restore_elsewhere,
    export_imports_older_format,
);
single_tests!(
    export_deterministic_and_strict,
    export_import_refusals,
    export_consistent_under_writes,
);

/// The tables of today's schema, in dependency order; SQLite's and sqlx's own are left out.
#[tokio::test]
async fn export_covers_the_schema_in_dependency_order() {
    let (_dir, store) = fresh().await;
    let export = store.meta.export_metadata().await.unwrap();
    let names: Vec<&str> = export.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "replication_cursors",
            "resources",
            "resource_keys",
            "speaker_changes",
            "speaker_profiles",
            "speaker_enrollments",
            "speech_assets",
        ]
    );
    assert_eq!(export.schema_version, crate::METADATA_FORMAT_VERSION);
}
