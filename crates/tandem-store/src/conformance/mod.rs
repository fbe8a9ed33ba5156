//! A backend-independent conformance suite.
//!
//! Each `pub async fn` checks one behaviour against a [`Store`] and panics with a clear message if
//! the backend gets it wrong. They use fresh region names and blob prefixes, so they can share one
//! store ([`run_all`]) or each get their own (`tests/conformance_sqlite.rs`). A new backend adds
//! one test file that calls every function here.
//!
//! The `replication_*` checks take the two stores of a region pair and need a fresh pair each
//! (they compare whole-store digests); `tests/replication_sqlite.rs` runs them. Likewise
//! `export_round_trip`, `export_restore_elsewhere` and `export_imports_older_format` need a second,
//! empty store to import into.

mod assets;
mod blob;
mod export;
mod lease;
mod meta;
mod replication;
mod speaker;
mod updates;

pub use assets::{assets_crud, assets_every_kind, assets_paging, assets_tenant_isolation};
pub use blob::{
    blob_bulk_put, blob_invalid_keys, blob_large, blob_list_prefix, blob_overwrite,
    blob_put_get_list_delete,
};
pub use export::{
    export_consistent_under_writes, export_deterministic_and_strict, export_import_refusals,
    export_imports_older_format, export_restore_elsewhere, export_round_trip,
};
pub use lease::{
    leases_exclusive_on_controlled_time, leases_not_exported, leases_race_one_winner,
    slots_limit_region_wide,
};
pub use meta::{
    create_get_list_delete, name_conflict_per_region, not_found_paths, regions_isolated,
};
pub use replication::{
    replication_idempotent, replication_log_paging, replication_partition_converges,
    replication_resource_sync, replication_ships_log, replication_store_ids,
    replication_text_dependent, replication_unknown_resource,
};
pub use speaker::{
    speaker_enrollments_and_reset, speaker_profile_crud, speaker_tenant_isolation,
    speaker_text_dependent_round_trip,
};
pub use updates::{
    concurrency_limit_update, concurrent_writers, duplicate_key_conflicts, key_rotation,
};

use tandem_core::{KeyHash, RegionName, ResourceId, ResourceKey};

use crate::{NewResource, Store};

/// Runs every conformance check, one after another, against one store.
pub async fn run_all(store: &Store) {
    create_get_list_delete(store).await;
    name_conflict_per_region(store).await;
    regions_isolated(store).await;
    key_rotation(store).await;
    concurrency_limit_update(store).await;
    not_found_paths(store).await;
    duplicate_key_conflicts(store).await;
    concurrent_writers(store).await;
    speaker_profile_crud(store).await;
    speaker_enrollments_and_reset(store).await;
    speaker_tenant_isolation(store).await;
    speaker_text_dependent_round_trip(store).await;
    assets_crud(store).await;
    assets_paging(store).await;
    assets_tenant_isolation(store).await;
    assets_every_kind(store).await;
    export_deterministic_and_strict(store).await;
    export_import_refusals(store).await;
    export_consistent_under_writes(store).await;
    blob_put_get_list_delete(store).await;
    blob_overwrite(store).await;
    blob_bulk_put(store).await;
    blob_list_prefix(store).await;
    blob_invalid_keys(store).await;
    blob_large(store).await;
    leases_exclusive_on_controlled_time(store).await;
    leases_race_one_winner(store).await;
    leases_not_exported(store).await;
    slots_limit_region_wide(store).await;
}

/// A region name no other check uses: `tag` plus 8 random hex digits.
fn fresh_region(tag: &str) -> RegionName {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    RegionName::new(format!("{tag}-{}", &suffix[..8])).expect("valid region name")
}

/// A unique blob prefix (ends with `/`).
fn fresh_prefix(tag: &str) -> String {
    format!("conf-{tag}-{}/", uuid::Uuid::new_v4().simple())
}

fn random_hash() -> KeyHash {
    ResourceKey::generate().hash()
}

fn new_resource(region: &RegionName, name: &str) -> NewResource {
    NewResource {
        id: ResourceId::random(),
        region: region.clone(),
        name: name.to_owned(),
        key1: random_hash(),
        key2: random_hash(),
        concurrency_limit: 100,
    }
}
