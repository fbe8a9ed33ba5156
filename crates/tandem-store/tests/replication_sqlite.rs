//! The replication conformance checks against two SQLite stores (the two regions of a pair),
//! each check on a fresh pair in temporary directories; plus what only a file-backed store can
//! show: cursors and store ids survive reopening.

use tandem_core::RegionName;
use tandem_store::{conformance, Cursor, Store};
use uuid::Uuid;

fn urls(dir: &tempfile::TempDir) -> (String, String) {
    (
        format!("sqlite://{}", dir.path().join("meta/tandem.db").display()),
        format!("file://{}", dir.path().join("blobs").display()),
    )
}

async fn open(dir: &tempfile::TempDir) -> Store {
    let (meta, blobs) = urls(dir);
    Store::open(&meta, &blobs).await.expect("open store")
}

async fn fresh() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(&dir).await;
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

pair_tests!(
    replication_ships_log,
    replication_idempotent,
    replication_partition_converges,
    replication_resource_sync,
    replication_unknown_resource,
    replication_store_ids,
    replication_log_paging,
    replication_text_dependent,
);

#[tokio::test]
async fn store_id_and_cursor_survive_reopen() {
    let (dir, store) = fresh().await;
    let id = store.meta.store_id().await.unwrap();
    let peer = RegionName::new("peer-region").unwrap();
    let cursor = Cursor {
        store_id: Uuid::new_v4(),
        seq: 42,
    };
    let applied = store
        .meta
        .apply_speaker_changes(&peer, cursor, &[], 20.0)
        .await
        .unwrap();
    assert_eq!(applied.changed, 0);
    store.close().await;
    drop(store);

    let reopened = open(&dir).await;
    assert_eq!(
        reopened.meta.store_id().await.unwrap(),
        id,
        "store id is stable"
    );
    assert_eq!(
        reopened.meta.replication_cursor(&peer).await.unwrap(),
        Some(cursor),
        "the cursor is durable"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_state_survives_reopen_and_reapplies_as_noop() {
    let (dir_a, a) = fresh().await;
    let (dir_b, b) = fresh().await;
    conformance::replication_ships_log(&a, &b).await;
    let a_id = a.meta.store_id().await.unwrap();
    let digest = b.meta.speaker_digest().await.unwrap();
    b.close().await;
    drop(b);

    let b = open(&dir_b).await;
    assert_eq!(b.meta.speaker_digest().await.unwrap(), digest);
    // Find the peer region from A's resources: the only region B mirrors.
    let batch = a.meta.speaker_changes(0, 1000).await.unwrap();
    let region = a
        .meta
        .get_resource(batch[0].profile.resource_id)
        .await
        .unwrap()
        .unwrap()
        .region;
    let cursor = b.meta.replication_cursor(&region).await.unwrap().unwrap();
    assert_eq!(cursor.store_id, a_id);
    assert_eq!(cursor.seq, a.meta.speaker_head().await.unwrap());
    let again = b
        .meta
        .apply_speaker_changes(&region, cursor, &batch, 20.0)
        .await
        .unwrap();
    assert_eq!(again.changed, 0, "nothing to do after reopening");
    assert_eq!(b.meta.speaker_digest().await.unwrap(), digest);
    drop(dir_a);
}

/// A database written by format 2 (speaker data, no HLCs) upgrades in place: it gets a store id,
/// HLCs stamped from its change log, and then replicates like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_2_database_upgrades_and_replicates() {
    use tandem_store::{MetaStore, ProfileKind, SpeakerOp, SqliteMetaStore};

    let dir = tempfile::tempdir().unwrap();
    let (url, _) = urls(&dir);
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    let v2 = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for f in ["0001_initial.sql", "0002_speaker.sql"] {
        std::fs::copy(src.join(f), v2.path().join(f)).unwrap();
    }
    let resource = tandem_core::ResourceId::random();
    let (p, q, e1, e2) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("meta/tandem.db"))
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::migrate::Migrator::new(v2.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let t = |s: u32| format!("2026-01-02T03:04:{s:02}.000000000Z");
        let r = resource.to_string();
        let stmts: Vec<(String, Vec<String>)> = vec![
            (
                "INSERT INTO resources VALUES ($1, 'legacy-region', 'legacy', 5, $2)".into(),
                vec![r.clone(), t(0)],
            ),
            (
                "INSERT INTO resource_keys VALUES ($1, 'key1', $2), ($1, 'key2', $3)".into(),
                vec![r.clone(), "a".repeat(64), "b".repeat(64)],
            ),
            (
                "INSERT INTO speaker_profiles (id, resource_id, kind, locale, created_at, updated_at, \
                 enrollments_count, enrollments_secs, speech_secs) \
                 VALUES ($1, $2, 'text-independent-verification', 'en-us', $3, $4, 1, 4.0, 3.0)"
                    .into(),
                vec![p.to_string(), r.clone(), t(1), t(4)],
            ),
            (
                "INSERT INTO speaker_profiles (id, resource_id, kind, locale, created_at, updated_at, deleted_at) \
                 VALUES ($1, $2, 'text-independent-verification', 'en-us', $3, $4, $4)"
                    .into(),
                vec![q.to_string(), r.clone(), t(5), t(6)],
            ),
            (
                "INSERT INTO speaker_enrollments (id, profile_id, created_at, audio_secs, speech_secs, audio_key, embedding, deleted_at) \
                 VALUES ($1, $2, $3, 3.0, 2.0, 'k1', zeroblob(1024), $4)"
                    .into(),
                vec![e1.to_string(), p.to_string(), t(2), t(3)],
            ),
            (
                "INSERT INTO speaker_enrollments (id, profile_id, created_at, audio_secs, speech_secs, audio_key, embedding) \
                 VALUES ($1, $2, $3, 4.0, 3.0, 'k2', zeroblob(1024))"
                    .into(),
                vec![e2.to_string(), p.to_string(), t(4)],
            ),
            (
                "INSERT INTO speaker_changes (at, resource_id, profile_id, op, enrollment_id) VALUES \
                 ($1, $7, $8, 'create', NULL), ($2, $7, $8, 'enroll', $9), ($3, $7, $8, 'reset', NULL), \
                 ($4, $7, $8, 'enroll', $10), ($5, $7, $11, 'create', NULL), ($6, $7, $11, 'delete', NULL)"
                    .into(),
                vec![t(1), t(2), t(3), t(4), t(5), t(6), r.clone(), p.to_string(), e1.to_string(), e2.to_string(), q.to_string()],
            ),
        ];
        for (sql, binds) in stmts {
            let mut query = sqlx::query(&sql);
            for b in binds {
                query = query.bind(b);
            }
            query.execute(&pool).await.unwrap();
        }
        pool.close().await;
    }

    let a = SqliteMetaStore::open(&url).await.expect("upgrade");
    assert_eq!(
        a.schema_version().await.unwrap(),
        tandem_store::METADATA_FORMAT_VERSION
    );
    assert!(!a.store_id().await.unwrap().is_nil());
    let kind = ProfileKind::TextIndependentVerification;
    let live: Vec<Uuid> = a
        .list_enrollments(resource, kind, p)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(live, vec![e2], "upgrading changes nothing visible");
    let log = a.speaker_changes(0, 100).await.unwrap();
    assert_eq!(log.len(), 6);
    assert!(
        log.windows(2).all(|w| w[0].hlc < w[1].hlc),
        "stamped in log order"
    );
    assert!(matches!(log[2].op, SpeakerOp::Reset));
    assert!(
        a.clock().last() >= log[5].hlc,
        "the clock starts past the stored stamps"
    );

    // Ship to a fresh store of the pair: identical data.
    let (_db, b) = fresh().await;
    let region = RegionName::new("legacy-region").unwrap();
    let list = a.export_resources(&region).await.unwrap();
    b.meta.sync_foreign_resources(&region, &list).await.unwrap();
    let cursor = Cursor {
        store_id: a.store_id().await.unwrap(),
        seq: a.speaker_head().await.unwrap(),
    };
    b.meta
        .apply_speaker_changes(&region, cursor, &log, 20.0)
        .await
        .unwrap();
    let (da, db) = (
        a.speaker_digest().await.unwrap(),
        b.meta.speaker_digest().await.unwrap(),
    );
    assert_eq!(da, db);
    assert_eq!((da.live_profiles, da.live_enrollments), (1, 1));
}
