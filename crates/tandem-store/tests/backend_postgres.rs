//! The storage conformance suite against a real PostgreSQL server (metadata) and local files
//! (blobs), each test in a database of its own; plus what only PostgreSQL has to show: backups
//! that cross backends (SQLite → PostgreSQL → SQLite, byte for byte), format checks and nodes
//! migrating one database at once.
//!
//! The server comes from `TANDEM_TEST_PG_URL` (`scripts/pg-server.sh start DIR` prints it; `make
//! test` runs everything under `scripts/pg-server.sh run`); the role must be allowed to create
//! databases. Without it the tests print why and pass, unless `TANDEM_REQUIRE_PG=1`.

use tandem_store::{
    conformance, MetaStore, PgMetaStore, Store, StoreError, METADATA_FORMAT_VERSION,
};
use tandem_testkit::TestDatabase;

/// The server's URL, or `None` (after saying so) when the tests should skip.
fn server_url() -> Option<String> {
    match std::env::var("TANDEM_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("TANDEM_REQUIRE_PG").as_deref() == Ok("1") {
                panic!("TANDEM_REQUIRE_PG=1 but TANDEM_TEST_PG_URL is not set");
            }
            eprintln!(
                "skipped: TANDEM_TEST_PG_URL is not set (run under scripts/pg-server.sh run, or \
                 eval \"$(scripts/pg-server.sh start DIR)\")"
            );
            None
        }
    }
}

/// A database of its own on the test server, dropped when the test ends.
async fn test_db(admin: &str) -> TestDatabase {
    let name = format!("tandem_test_{}", uuid::Uuid::new_v4().simple());
    TestDatabase::create(admin, &name).await
}

/// A fresh PostgreSQL store with local-file blobs.
async fn fresh(admin: &str) -> (TestDatabase, tempfile::TempDir, Store) {
    let db = test_db(admin).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let blobs = format!("file://{}", dir.path().join("blobs").display());
    let store = Store::open(db.url(), &blobs).await.expect("open store");
    (db, dir, store)
}

/// A fresh SQLite store, for the tests that cross backends.
async fn fresh_sqlite() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let meta = format!("sqlite://{}", dir.path().join("meta/tandem.db").display());
    let blobs = format!("file://{}", dir.path().join("blobs").display());
    let store = Store::open(&meta, &blobs).await.expect("open store");
    (dir, store)
}

macro_rules! single_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(admin) = server_url() else { return };
            let (_db, _dir, store) = fresh(&admin).await;
            conformance::$name(&store).await;
            store.close().await;
        }
    )*};
}

macro_rules! pair_tests {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let Some(admin) = server_url() else { return };
            let (_da, _fa, a) = fresh(&admin).await;
            let (_db, _fb, b) = fresh(&admin).await;
            conformance::$name(&a, &b).await;
            a.close().await;
            b.close().await;
        }
    )*};
}

single_tests!(
    run_all,
    concurrent_writers,
    leases_race_one_winner,
    slots_limit_region_wide
);

pair_tests!(
    export_round_trip,
    export_restore_elsewhere,
    export_imports_older_format,
    replication_ships_log,
    replication_idempotent,
    replication_partition_converges,
    replication_resource_sync,
    replication_unknown_resource,
    replication_store_ids,
    replication_log_paging,
    replication_text_dependent,
);

/// A backup taken from SQLite restores into PostgreSQL and exports again to the same bytes
/// (checked inside `export_round_trip`), and back the other way: backups cross backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_crosses_backends_byte_for_byte() {
    let Some(admin) = server_url() else { return };
    let (_ds, sqlite) = fresh_sqlite().await;
    let (_db, _dir, pg) = fresh(&admin).await;
    conformance::export_round_trip(&sqlite, &pg).await;
    let (_ds2, sqlite2) = fresh_sqlite().await;
    let (_db2, _dir2, pg2) = fresh(&admin).await;
    conformance::export_round_trip(&pg2, &sqlite2).await;

    // The restored PostgreSQL store's export imports into another empty SQLite store unchanged.
    let from_pg = pg.meta.export_metadata().await.expect("export");
    let (_ds3, sqlite3) = fresh_sqlite().await;
    sqlite3
        .meta
        .import_metadata(&from_pg)
        .await
        .expect("import into SQLite");
    let back = sqlite3.meta.export_metadata().await.expect("export");
    assert!(
        back.to_bytes() == from_pg.to_bytes(),
        "SQLite re-export differs"
    );
    pg.close().await;
    pg2.close().await;
}

/// The pair of a region pair may run different backends: replication converges between SQLite
/// and PostgreSQL as between two stores of one kind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_crosses_backends() {
    let Some(admin) = server_url() else { return };
    let (_ds, sqlite) = fresh_sqlite().await;
    let (_db, _dir, pg) = fresh(&admin).await;
    conformance::replication_partition_converges(&sqlite, &pg).await;
    pg.close().await;
}

#[tokio::test]
async fn newer_metadata_format_is_refused() {
    let Some(admin) = server_url() else { return };
    let db = test_db(&admin).await;
    let store = PgMetaStore::open(db.url()).await.expect("open");
    assert_eq!(
        store.schema_version().await.unwrap(),
        METADATA_FORMAT_VERSION
    );
    sqlx::query("UPDATE tandem_meta SET format_version = 99")
        .execute(store.pool())
        .await
        .unwrap();
    store.close().await;
    let err = PgMetaStore::open(db.url())
        .await
        .expect_err("a newer format must be refused");
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
    let err = PgMetaStore::open_with(db.url(), false)
        .await
        .expect_err("refused without migrating too");
    assert!(matches!(err, StoreError::FormatTooNew { .. }), "{err:?}");
}

#[tokio::test]
async fn without_migrating_a_new_database_is_refused_until_migrated() {
    let Some(admin) = server_url() else { return };
    let db = test_db(&admin).await;
    let err = PgMetaStore::open_with(db.url(), false)
        .await
        .expect_err("a new database needs migrating");
    assert!(
        matches!(err, StoreError::MigrationNeeded { found: 0, required } if required == METADATA_FORMAT_VERSION),
        "{err:?}"
    );
    let (before, after) = Store::migrate(db.url()).await.unwrap();
    assert_eq!((before, after), (0, METADATA_FORMAT_VERSION));
    let again = Store::migrate(db.url()).await.unwrap();
    assert_eq!(again, (METADATA_FORMAT_VERSION, METADATA_FORMAT_VERSION));
    let store = PgMetaStore::open_with(db.url(), false)
        .await
        .expect("migrated");
    assert_eq!(
        store.schema_version().await.unwrap(),
        METADATA_FORMAT_VERSION
    );
    store.close().await;
}

/// Nodes starting together against one new database: each open migrates under the advisory
/// lock, so every one succeeds and the migrations run once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_opens_migrate_once() {
    let Some(admin) = server_url() else { return };
    let db = test_db(&admin).await;
    let opens = (0..6).map(|_| {
        let url = db.url().to_owned();
        tokio::spawn(async move { PgMetaStore::open(&url).await })
    });
    let stores: Vec<PgMetaStore> = futures::future::join_all(opens)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("every concurrent open succeeds"))
        .collect();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(stores[0].pool())
        .await
        .unwrap();
    assert_eq!(applied, i64::from(METADATA_FORMAT_VERSION));
    let ids: std::collections::BTreeSet<uuid::Uuid> =
        futures::future::join_all(stores.iter().map(|s| s.store_id()))
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
    assert_eq!(ids.len(), 1, "one database, one store id");
    for s in &stores {
        assert_eq!(s.schema_version().await.unwrap(), METADATA_FORMAT_VERSION);
        s.close().await;
    }
}

/// Two nodes (two pools) on one database see each other's writes at once: nothing is cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_one_database() {
    let Some(admin) = server_url() else { return };
    let db = test_db(&admin).await;
    let a = PgMetaStore::open(db.url()).await.unwrap();
    let b = PgMetaStore::open(db.url()).await.unwrap();
    let region = tandem_core::RegionName::new("shared").unwrap();
    let r = tandem_store::NewResource {
        id: tandem_core::ResourceId::random(),
        region: region.clone(),
        name: "one".into(),
        key1: tandem_core::ResourceKey::generate().hash(),
        key2: tandem_core::ResourceKey::generate().hash(),
        concurrency_limit: 3,
    };
    let created = a.create_resource(r.clone()).await.unwrap();
    assert_eq!(b.list_resources(&region).await.unwrap(), vec![created]);
    let err = b.create_resource(r).await.expect_err("same name");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in ["mysql://x/y", "postgres:/nohost"] {
        let err = Store::open(url, "file:///tmp/unused-blobs")
            .await
            .expect_err("refused");
        assert!(
            matches!(
                err,
                StoreError::UnsupportedUrl { .. } | StoreError::Database(_)
            ),
            "{url}: {err:?}"
        );
    }
}

/// Enrollments racing on one profile from two nodes: each sees the others' rows when it
/// recomputes the totals (the speaker lock), and the change log has no gap and no reordering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enrollments_from_two_nodes_keep_totals_and_log() {
    use tandem_store::{enrollment_audio_key, NewEnrollment, NewProfile, ProfileKind};
    const N: usize = 24;
    let Some(admin) = server_url() else { return };
    let db = test_db(&admin).await;
    let a = PgMetaStore::open(db.url()).await.unwrap();
    let b = PgMetaStore::open(db.url()).await.unwrap();
    let region = tandem_core::RegionName::new("racing").unwrap();
    let r = a
        .create_resource(tandem_store::NewResource {
            id: tandem_core::ResourceId::random(),
            region,
            name: "r".into(),
            key1: tandem_core::ResourceKey::generate().hash(),
            key2: tandem_core::ResourceKey::generate().hash(),
            concurrency_limit: 3,
        })
        .await
        .unwrap();
    let kind = ProfileKind::TextIndependentVerification;
    let p = a
        .create_profile(NewProfile {
            id: uuid::Uuid::new_v4(),
            resource_id: r.id,
            kind,
            locale: "en-us".into(),
        })
        .await
        .unwrap();
    let tasks = (0..N).map(|i| {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let id = uuid::Uuid::new_v4();
        let mut embedding = vec![0.0f32; 256];
        embedding[i % 256] = 1.0;
        let e = NewEnrollment {
            id,
            profile_id: p.id,
            audio_secs: 2.5,
            speech_secs: 2.0,
            audio_key: enrollment_audio_key(r.id, p.id, id),
            embedding,
            passphrase: None,
        };
        tokio::spawn(async move { node.add_enrollment(r.id, kind, e, 20.0).await })
    });
    for t in futures::future::join_all(tasks).await {
        t.expect("task").expect("enroll");
    }
    let got = b.get_profile(r.id, kind, p.id).await.unwrap().unwrap();
    assert_eq!(
        got.enrollments_count as usize, N,
        "the totals count every enrollment"
    );
    assert_eq!(got.speech_secs, 2.0 * N as f64);
    assert_eq!(got.enrollments_secs, 2.5 * N as f64);
    assert_eq!(got.status, tandem_store::EnrollmentStatus::Enrolled);
    let changes = a.speaker_changes(0, 1000).await.unwrap();
    let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
    assert_eq!(
        seqs,
        (1..=N as u64 + 1).collect::<Vec<_>>(),
        "no gap in the log"
    );
    assert_eq!(a.speaker_head().await.unwrap(), N as u64 + 1);
    a.close().await;
    b.close().await;
}
