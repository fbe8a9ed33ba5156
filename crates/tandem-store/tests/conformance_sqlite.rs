//! The conformance suite against SQLite metadata and local-filesystem blobs, one test per
//! behaviour, each on a fresh store in its own temporary directory.

use tandem_store::{conformance, Store};

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = format!("sqlite://{}", dir.path().join("meta/tandem.db").display());
    let blobs = format!("file://{}", dir.path().join("blobs").display());
    let store = Store::open(&meta, &blobs).await.expect("open store");
    (dir, store)
}

macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let (_dir, store) = fresh().await;
            conformance::$name(&store).await;
        }
    )*};
}

conformance_tests!(
    create_get_list_delete,
    name_conflict_per_region,
    regions_isolated,
    key_rotation,
    concurrency_limit_update,
    not_found_paths,
    duplicate_key_conflicts,
    concurrent_writers,
    speaker_profile_crud,
    speaker_enrollments_and_reset,
    speaker_tenant_isolation,
    speaker_text_dependent_round_trip,
    assets_crud,
    assets_paging,
    assets_tenant_isolation,
    assets_every_kind,
    blob_put_get_list_delete,
    blob_overwrite,
    blob_bulk_put,
    blob_list_prefix,
    blob_invalid_keys,
    blob_large,
    leases_exclusive_on_controlled_time,
    leases_race_one_winner,
    leases_not_exported,
    slots_limit_region_wide,
    run_all,
);
