//! A database written by format 3 (text-independent speaker data with HLCs, before passphrases)
//! upgrades in place to format 4: `speaker_profiles` is rebuilt to admit text-dependent
//! profiles, and no profile, enrollment (live or tombstone), change or index is lost on the
//! way (the rebuild must not cascade to the enrollments).

use tandem_store::{
    EnrollmentStatus, MetaStore, NewEnrollment, NewProfile, ProfileKind, SqliteMetaStore,
    METADATA_FORMAT_VERSION,
};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_3_database_upgrades_and_keeps_its_speaker_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("meta/tandem.db").display());
    std::fs::create_dir_all(dir.path().join("meta")).unwrap();
    let v3 = tempfile::tempdir().unwrap();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for f in [
        "0001_initial.sql",
        "0002_speaker.sql",
        "0003_replication.sql",
    ] {
        std::fs::copy(src.join(f), v3.path().join(f)).unwrap();
    }
    let resource = tandem_core::ResourceId::random();
    let (p, q, e1, e2) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    let t = |s: u32| format!("2026-03-04T05:06:{s:02}.000000000Z");
    let r = resource.to_string();
    {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("meta/tandem.db"))
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        sqlx::migrate::Migrator::new(v3.path())
            .await
            .unwrap()
            .run(&pool)
            .await
            .unwrap();
        let stmts: Vec<(&str, Vec<String>)> = vec![
            (
                "INSERT INTO resources VALUES ($1, 'old-region', 'old', 5, $2)",
                vec![r.clone(), t(0)],
            ),
            (
                "INSERT INTO resource_keys VALUES ($1, 'key1', $2), ($1, 'key2', $3)",
                vec![r.clone(), "c".repeat(64), "d".repeat(64)],
            ),
            (
                "INSERT INTO speaker_profiles (id, resource_id, kind, locale, created_at, \
                 updated_at, enrollments_count, enrollments_secs, speech_secs, status, signature, \
                 hlc, reset_hlc, required_speech_secs) \
                 VALUES ($1, $2, 'text-independent-verification', 'en-us', $3, $4, 1, 25.0, \
                 22.0, 'Enrolled', zeroblob(1024), 65536, 131072, 20.0)",
                vec![p.to_string(), r.clone(), t(1), t(4)],
            ),
            (
                "INSERT INTO speaker_profiles (id, resource_id, kind, locale, created_at, \
                 updated_at, deleted_at, hlc, deleted_hlc) \
                 VALUES ($1, $2, 'text-independent-identification', 'en-us', $3, $4, $4, 1, 2)",
                vec![q.to_string(), r.clone(), t(5), t(6)],
            ),
            (
                "INSERT INTO speaker_enrollments (id, profile_id, created_at, audio_secs, \
                 speech_secs, audio_key, embedding, deleted_at, hlc) \
                 VALUES ($1, $2, $3, 3.0, 2.0, 'k1', zeroblob(1024), $4, 100000)",
                vec![e1.to_string(), p.to_string(), t(2), t(3)],
            ),
            (
                "INSERT INTO speaker_enrollments (id, profile_id, created_at, audio_secs, \
                 speech_secs, audio_key, embedding, hlc) \
                 VALUES ($1, $2, $3, 25.0, 22.0, 'k2', zeroblob(1024), 200000)",
                vec![e2.to_string(), p.to_string(), t(4)],
            ),
            (
                "INSERT INTO speaker_changes (at, resource_id, profile_id, op, enrollment_id, hlc) \
                 VALUES ($1, $3, $4, 'create', NULL, 65536), ($2, $3, $4, 'enroll', $5, 200000)",
                vec![t(1), t(4), r.clone(), p.to_string(), e2.to_string()],
            ),
        ];
        for (sql, binds) in stmts {
            let mut query = sqlx::query(sql);
            for b in binds {
                query = query.bind(b);
            }
            query.execute(&pool).await.unwrap();
        }
        pool.close().await;
    }

    let store = SqliteMetaStore::open(&url).await.expect("upgrade");
    assert_eq!(
        store.schema_version().await.unwrap(),
        METADATA_FORMAT_VERSION
    );
    assert_eq!(METADATA_FORMAT_VERSION, 8);
    let pool = store.pool();
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM speaker_profiles").await, 2);
    assert_eq!(
        count("SELECT count(*) FROM speaker_enrollments").await,
        2,
        "the rebuild did not cascade to the enrollments, tombstones included"
    );
    assert_eq!(count("SELECT count(*) FROM speaker_changes").await, 2);
    assert_eq!(
        count("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'speaker_profiles_list'").await,
        1,
        "the list index is kept"
    );
    assert_eq!(
        count("SELECT count(*) FROM pragma_foreign_key_check").await,
        0,
        "foreign keys hold"
    );
    assert_eq!(
        count("SELECT count(*) FROM sqlite_master WHERE name LIKE '%_v4%'").await,
        0,
        "no scratch table left behind"
    );

    let kind = ProfileKind::TextIndependentVerification;
    let got = store.get_profile(resource, kind, p).await.unwrap().unwrap();
    assert_eq!(got.status, EnrollmentStatus::Enrolled);
    assert_eq!(got.enrollments_count, 1);
    assert_eq!(got.passphrase, None);
    assert_eq!(got.signature.len(), 256);
    let live: Vec<Uuid> = store
        .list_enrollments(resource, kind, p)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(live, vec![e2]);
    assert_eq!(
        store
            .get_profile(resource, ProfileKind::TextIndependentIdentification, q)
            .await
            .unwrap(),
        None,
        "the deleted profile stays deleted"
    );
    let changes = store.speaker_changes(0, 10).await.unwrap();
    assert_eq!(changes.len(), 2, "the log survives");

    // The widened kind is usable, and the foreign key still points at the profiles table.
    let td = store
        .create_profile(NewProfile {
            id: Uuid::new_v4(),
            resource_id: resource,
            kind: ProfileKind::TextDependentVerification,
            locale: "en-us".into(),
        })
        .await
        .expect("a text-dependent profile after the upgrade");
    let id = Uuid::new_v4();
    let enrolled = store
        .add_enrollment(
            resource,
            ProfileKind::TextDependentVerification,
            NewEnrollment {
                id,
                profile_id: td.id,
                audio_secs: 2.0,
                speech_secs: 1.5,
                audio_key: tandem_store::enrollment_audio_key(resource, td.id, id),
                embedding: vec![1.0; 256],
                passphrase: Some("my name is unknown to you".into()),
            },
            20.0,
        )
        .await
        .unwrap();
    assert_eq!(
        enrolled.passphrase.as_deref(),
        Some("my name is unknown to you")
    );
    let orphan = sqlx::query(
        "INSERT INTO speaker_enrollments (id, profile_id, created_at, audio_secs, speech_secs, \
         audio_key, embedding) VALUES ('x', 'no-such-profile', 't', 1, 1, 'k', x'00')",
    )
    .execute(pool)
    .await;
    assert!(orphan.is_err(), "the enrollments' foreign key is enforced");
    // Deleting the resource still cascades through the rebuilt table.
    assert!(store.delete_resource(resource).await.unwrap());
    assert_eq!(count("SELECT count(*) FROM speaker_enrollments").await, 0);
}
