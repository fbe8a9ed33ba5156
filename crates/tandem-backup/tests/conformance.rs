//! The repository conformance suite: every scenario runs against every backend (in memory, the
//! local filesystem, and S3 when `TANDEM_TEST_S3_URL` and the `AWS_*` / `TANDEM_BACKUP_S3_*`
//! variables are set).

mod support;

use std::time::Duration;

use support::*;
use tandem_backup::*;
use time::macros::datetime;
use time::OffsetDateTime;

fn small_chunks() -> RepoOptions {
    RepoOptions {
        chunker: ChunkerParams {
            min_size: 4 * 1024,
            avg_size: 16 * 1024,
            max_size: 64 * 1024,
            ..ChunkerParams::default()
        },
        ..RepoOptions::default()
    }
}

async fn init(b: &dyn Backend, opts: &RepoOptions) -> Repository {
    Repository::init_target(b.fresh(), b.name(), opts)
        .await
        .unwrap()
}

fn at(minutes: i64) -> BackupOptions {
    BackupOptions {
        time: Some(datetime!(2026-11-01 00:00 UTC) + time::Duration::minutes(minutes)),
        parent: ParentChoice::None,
        ..Default::default()
    }
}

async fn backup(repo: &Repository, src: &MemSource, opts: &BackupOptions) -> SnapshotSummary {
    repo.backup(src, opts, &NoProgress).await.unwrap()
}

async fn restore_all(repo: &Repository, id: &str) -> Result<MemSink> {
    let sink = MemSink::default();
    repo.restore(id, &sink, &RestoreOptions::default(), &NoProgress)
        .await
        .map(|_| sink)
}

fn expect_identical(src: &MemSource, sink: &MemSink) {
    let got = sink.files();
    assert_eq!(got[METADATA_PATH], src.metadata.to_vec(), "metadata export");
    assert_eq!(got.len(), src.files.len() + 1);
    for (p, d) in &src.files {
        assert!(got[p] == d.to_vec(), "{p} differs");
    }
}

fn various_files() -> MemSource {
    MemSource::new(
        b"{\"resources\": 3}",
        &[
            ("empty", Vec::new()),
            ("one", vec![42]),
            ("small.txt", text(1000)),
            ("a/below-min.wav", noise(200_000, 1)),
            ("a/b/over-max.wav", noise(5 * 1024 * 1024 + 17, 2)),
            ("a/b/text-9m.txt", text(9 * 1024 * 1024)),
        ],
    )
}

async fn round_trip(b: &dyn Backend) {
    let repo = init(b, &RepoOptions::default()).await;
    let src = various_files();
    let s = backup(&repo, &src, &at(0)).await;
    assert_eq!(s.totals.files, 6);
    let listed = repo.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].summary.as_ref().unwrap(), &s);
    let m = repo.load_manifest(&s.id).await.unwrap();
    let over = m
        .files
        .iter()
        .find(|f| f.path == "a/b/over-max.wav")
        .unwrap();
    assert!(
        over.chunks.len() >= 2,
        "a file over the max chunk size has several chunks"
    );
    assert!(m
        .files
        .iter()
        .find(|f| f.path == "empty")
        .unwrap()
        .chunks
        .is_empty());
    expect_identical(&src, &restore_all(&repo, &s.id).await.unwrap());
    // Reopening sees the same repository.
    let again = Repository::open_target(
        Target {
            store: repo.store().clone(),
            local_root: None,
        },
        b.name(),
        &RepoOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(again.config(), repo.config());
}

async fn dedup_and_partial_change(b: &dyn Backend) {
    let repo = init(b, &small_chunks()).await;
    let mut src = MemSource::new(
        b"meta",
        &[("big", noise(1_000_000, 3)), ("other", noise(300_000, 4))],
    );
    let first = backup(&repo, &src, &at(0)).await;
    let before = keys(repo.store()).await;
    // Unchanged, no parent: everything is re-read, nothing but the manifest is written.
    let second = backup(&repo, &src, &at(1)).await;
    let after = keys(repo.store()).await;
    assert_eq!(after.len(), before.len() + 1, "only the manifest is new");
    assert_eq!(second.totals.new_chunks, 0);
    assert_eq!(first.totals.bytes, second.totals.bytes);
    // Change a few bytes in the middle of `big`: only the chunks around them are new.
    let mut big = src.files["big"].to_vec();
    big[500_000..500_010].copy_from_slice(b"0123456789");
    src.files.insert("big".into(), big.into());
    let third = backup(&repo, &src, &at(2)).await;
    assert!(
        (1..=3).contains(&third.totals.new_chunks),
        "new chunks: {}",
        third.totals.new_chunks
    );
    assert!(
        third.totals.new_bytes < 200_000,
        "{}",
        third.totals.new_bytes
    );
    expect_identical(&src, &restore_all(&repo, &third.id).await.unwrap());
    assert!(repo.verify(true, &NoProgress).await.unwrap().is_ok());
}

async fn parent_skips_unchanged_files(b: &dyn Backend) {
    let repo = init(b, &small_chunks()).await;
    let mut src = MemSource::new(b"m", &[("x", noise(100_000, 5)), ("y", noise(50_000, 6))]);
    src.fingerprints = true;
    backup(
        &repo,
        &src,
        &BackupOptions {
            parent: ParentChoice::Latest,
            ..at(0)
        },
    )
    .await;
    let opened = src.opens.load(std::sync::atomic::Ordering::SeqCst);
    let s = backup(
        &repo,
        &src,
        &BackupOptions {
            parent: ParentChoice::Latest,
            ..at(1)
        },
    )
    .await;
    assert_eq!(
        src.opens.load(std::sync::atomic::Ordering::SeqCst),
        opened,
        "no file re-read"
    );
    assert!(s.parent.is_some());
    assert_eq!(s.totals.new_chunks, 0);
    expect_identical(&src, &restore_all(&repo, &s.id).await.unwrap());
}

async fn encryption(b: &dyn Backend) {
    let key = Key::generate();
    let opts = RepoOptions {
        key: Some(key.clone()),
        ..small_chunks()
    };
    let target = b.fresh();
    let repo = Repository::init_target(target.clone(), b.name(), &opts)
        .await
        .unwrap();
    let marker = b"MARKER-plaintext-that-must-never-appear-in-the-bucket-0123456789";
    let mut data = noise(100_000, 7);
    data[1000..1000 + marker.len()].copy_from_slice(marker);
    let src = MemSource::new(marker, &[("secret-file-name.wav", data)]);
    let s = backup(&repo, &src, &at(0)).await;
    expect_identical(&src, &restore_all(&repo, &s.id).await.unwrap());
    for k in keys(repo.store()).await {
        let obj = get(repo.store(), &k).await;
        assert!(!contains(&obj, marker), "{k} holds plaintext");
        assert!(
            !contains(&obj, b"secret-file-name"),
            "{k} holds a file name"
        );
    }
    let open = |key: Option<Key>| {
        let t = target.clone();
        async move {
            Repository::open_target(
                t,
                "r",
                &RepoOptions {
                    key,
                    ..RepoOptions::default()
                },
            )
            .await
        }
    };
    assert!(matches!(open(None).await, Err(Error::KeyRequired)));
    assert!(matches!(
        open(Some(Key::generate())).await,
        Err(Error::WrongKey { .. })
    ));
    assert!(open(Some(key)).await.is_ok());
    // The control: the same data in a plaintext repository is visible (incompressible).
    let plain = init(b, &small_chunks()).await;
    backup(&plain, &src, &at(0)).await;
    let mut seen = false;
    for k in keys(plain.store()).await {
        seen |= contains(&get(plain.store(), &k).await, marker);
    }
    assert!(seen, "control: the marker is visible without encryption");
    let t = Target {
        store: plain.store().clone(),
        local_root: None,
    };
    let with_key = RepoOptions {
        key: Some(Key::generate()),
        ..RepoOptions::default()
    };
    assert!(matches!(
        Repository::open_target(t, "p", &with_key).await,
        Err(Error::NotEncrypted)
    ));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn flipped_byte_in_a_chunk(b: &dyn Backend, key: Option<Key>) {
    let repo = init(
        b,
        &RepoOptions {
            key,
            ..small_chunks()
        },
    )
    .await;
    let src = MemSource::new(
        b"m",
        &[("good", noise(100_000, 8)), ("victim", noise(100_000, 9))],
    );
    let s = backup(&repo, &src, &at(0)).await;
    let m = repo.load_manifest(&s.id).await.unwrap();
    let victim = m.files.iter().find(|f| f.path == "victim").unwrap();
    let chunk = victim.chunks[1].id.clone();
    flip_byte(
        repo.store(),
        &ChunkId::from_hex(&chunk).unwrap().object_key(),
    )
    .await;

    assert!(
        repo.verify(false, &NoProgress).await.unwrap().is_ok(),
        "present, not read"
    );
    let report = repo.verify(true, &NoProgress).await.unwrap();
    let bad: Vec<_> = report.damaged().collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].snapshot, s.id);
    let SnapshotStatus::Damaged { chunks } = &bad[0].status else {
        panic!("{:?}", bad[0].status)
    };
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].chunk, chunk);
    assert!(!chunks[0].missing);
    assert_eq!(chunks[0].paths, ["victim"]);

    let sink = MemSink::default();
    let err = repo
        .restore(&s.id, &sink, &RestoreOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    match &err {
        Error::Corrupt {
            snapshot,
            chunk: c,
            path,
            ..
        } => {
            assert_eq!(snapshot.as_deref(), Some(s.id.as_str()));
            assert_eq!(c.as_deref(), Some(chunk.as_str()));
            assert_eq!(path.as_deref(), Some("victim"));
        }
        e => panic!("{e}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains(&s.id) && msg.contains(&chunk) && msg.contains("victim"),
        "{msg}"
    );
    assert_eq!(
        sink.created.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "sink untouched"
    );
    // Without the read-back preflight, the damaged file is still never committed.
    let sink = MemSink::default();
    let lazy = RestoreOptions {
        preflight_read_data: false,
        ..RestoreOptions::default()
    };
    assert!(repo
        .restore(&s.id, &sink, &lazy, &NoProgress)
        .await
        .is_err());
    assert!(!sink.files().contains_key("victim"));
}

async fn truncated_manifest(b: &dyn Backend) {
    let repo = init(b, &small_chunks()).await;
    let src = MemSource::new(b"m", &[("f", noise(50_000, 10))]);
    let good = backup(&repo, &src, &at(0)).await;
    let bad = backup(&repo, &src, &at(1)).await;
    truncate(repo.store(), &format!("snapshots/{}", bad.id)).await;
    let report = repo.verify(true, &NoProgress).await.unwrap();
    let damaged: Vec<_> = report.damaged().collect();
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0].snapshot, bad.id);
    assert!(matches!(
        damaged[0].status,
        SnapshotStatus::ManifestUnreadable { .. }
    ));
    let listed = repo.list().await.unwrap();
    assert!(listed[1].error.is_some() && listed[0].error.is_none());
    let sink = MemSink::default();
    let err = repo
        .restore(&bad.id, &sink, &RestoreOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { snapshot: Some(s), .. } if *s == bad.id),
        "{err}"
    );
    assert_eq!(sink.created.load(std::sync::atomic::Ordering::SeqCst), 0);
    expect_identical(&src, &restore_all(&repo, &good.id).await.unwrap());
    // Prune refuses while the damaged snapshot is kept; forgetting it unblocks.
    let keep = Retention {
        keep_last: 2,
        ..Default::default()
    };
    assert!(repo
        .prune(&keep, &PruneOptions::default(), &NoProgress)
        .await
        .is_err());
    repo.forget(std::slice::from_ref(&bad.id)).await.unwrap();
    repo.prune(&keep, &PruneOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(repo.verify(true, &NoProgress).await.unwrap().is_ok());
}

async fn missing_chunk(b: &dyn Backend) {
    let repo = init(b, &small_chunks()).await;
    let src = MemSource::new(b"m", &[("f", noise(80_000, 11))]);
    let s = backup(&repo, &src, &at(0)).await;
    let m = repo.load_manifest(&s.id).await.unwrap();
    let chunk = m.files[0].chunks[0].id.clone();
    let path = object_store::path::Path::from(ChunkId::from_hex(&chunk).unwrap().object_key());
    repo.store().delete(&path).await.unwrap();
    let report = repo.verify(false, &NoProgress).await.unwrap();
    let SnapshotStatus::Damaged { chunks } = &report.snapshots[0].status else {
        panic!("{report:?}")
    };
    assert_eq!(
        (chunks[0].chunk.as_str(), chunks[0].missing),
        (chunk.as_str(), true)
    );
    assert_eq!(chunks[0].paths, ["f"]);
    let sink = MemSink::default();
    let lazy = RestoreOptions {
        preflight_read_data: false,
        ..RestoreOptions::default()
    };
    let err = repo
        .restore(&s.id, &sink, &lazy, &NoProgress)
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&chunk), "{err}");
    assert_eq!(sink.created.load(std::sync::atomic::Ordering::SeqCst), 0);
}

async fn interrupted_backup(b: &dyn Backend) {
    let repo = init(b, &small_chunks()).await;
    let mut src = MemSource::new(
        b"m",
        &[("a", noise(200_000, 12)), ("b", noise(200_000, 13))],
    );
    let first = backup(&repo, &src, &at(0)).await;
    src.files.insert("c".into(), noise(400_000, 14).into());
    src.files.insert("d".into(), noise(400_000, 15).into());
    src.fail_at = Some("d".into());
    let err = repo.backup(&src, &at(1), &NoProgress).await.unwrap_err();
    assert!(
        matches!(err, Error::Source { ref path, .. } if path == "d"),
        "{err}"
    );
    assert_eq!(
        repo.snapshot_ids().await.unwrap(),
        std::slice::from_ref(&first.id)
    );
    let report = repo.verify(true, &NoProgress).await.unwrap();
    assert!(report.is_ok());
    assert!(report.orphan_chunks > 0, "the failed run left orphans");
    src.fail_at = None;
    let next = backup(&repo, &src, &at(2)).await;
    expect_identical(&src, &restore_all(&repo, &next.id).await.unwrap());
    assert!(repo.verify(true, &NoProgress).await.unwrap().is_ok());
}

async fn prune_keeps_what_is_used(b: &dyn Backend) {
    let repo = init(b, &small_chunks()).await;
    let shared = noise(150_000, 16);
    let mut ids = Vec::new();
    for i in 0..4u64 {
        let src = MemSource::new(
            b"m",
            &[("shared", shared.clone()), ("own", noise(100_000, 100 + i))],
        );
        ids.push(backup(&repo, &src, &at(i as i64 * 90)).await.id);
    }
    let policy = Retention {
        keep_last: 2,
        ..Default::default()
    };
    let now = OffsetDateTime::now_utc();
    let dry = PruneOptions {
        dry_run: true,
        grace: Duration::ZERO,
        now: Some(now),
    };
    let before = keys(repo.store()).await;
    let r = repo.prune(&policy, &dry, &NoProgress).await.unwrap();
    assert_eq!(r.forgotten, ids[..2]);
    assert!(r.deleted_chunks > 0);
    assert_eq!(keys(repo.store()).await, before, "dry run deletes nothing");
    // Inside the grace period: snapshots go, their chunks stay.
    let in_grace = PruneOptions {
        grace: Duration::from_secs(3600),
        now: Some(now),
        ..Default::default()
    };
    let r = repo.prune(&policy, &in_grace, &NoProgress).await.unwrap();
    assert_eq!(r.deleted_chunks, 0);
    assert!(r.chunks_in_grace > 0);
    assert_eq!(repo.snapshot_ids().await.unwrap(), ids[2..]);
    // Past it: unused chunks go, the kept snapshots stay whole.
    let later = PruneOptions {
        now: Some(now + time::Duration::hours(2)),
        ..in_grace
    };
    let r = repo.prune(&policy, &later, &NoProgress).await.unwrap();
    assert!(r.deleted_chunks > 0);
    assert_eq!(r.chunks_in_grace, 0);
    let report = repo.verify(true, &NoProgress).await.unwrap();
    assert!(report.is_ok());
    assert_eq!(report.orphan_chunks, 0);
    for id in &ids[2..] {
        restore_all(&repo, id).await.unwrap();
    }
    // The newest survives even a policy that keeps nothing.
    let r = repo
        .prune(&Retention::default(), &later, &NoProgress)
        .await
        .unwrap();
    assert_eq!(r.kept.len(), 1);
    assert_eq!(repo.snapshot_ids().await.unwrap(), ids[3..]);
    assert!(repo.verify(true, &NoProgress).await.unwrap().is_ok());
}

async fn repository_lifecycle(b: &dyn Backend) {
    let target = b.fresh();
    let opts = RepoOptions::default();
    assert!(matches!(
        Repository::open_target(target.clone(), "x", &opts).await,
        Err(Error::NotARepository { .. })
    ));
    Repository::init_target(target.clone(), "x", &opts)
        .await
        .unwrap();
    assert!(matches!(
        Repository::init_target(target.clone(), "x", &opts).await,
        Err(Error::AlreadyExists { .. })
    ));
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&get(&target.store, CONFIG_KEY).await).unwrap();
    cfg["format"] = (REPO_FORMAT + 1).into();
    put(&target.store, CONFIG_KEY, serde_json::to_vec(&cfg).unwrap()).await;
    assert!(matches!(
        Repository::open_target(target, "x", &opts).await,
        Err(Error::FormatTooNew { .. })
    ));
    let repo = init(b, &opts).await;
    assert!(matches!(
        restore_all(&repo, "20261101T000000Z-00000000").await,
        Err(Error::SnapshotNotFound(_))
    ));
}

/// Runs every scenario against `b`.
async fn conformance(b: &dyn Backend) {
    println!("[{}] round trip", b.name());
    round_trip(b).await;
    println!("[{}] dedup and partial change", b.name());
    dedup_and_partial_change(b).await;
    println!("[{}] parent skips unchanged files", b.name());
    parent_skips_unchanged_files(b).await;
    println!("[{}] encryption", b.name());
    encryption(b).await;
    println!("[{}] flipped byte (plain, encrypted)", b.name());
    flipped_byte_in_a_chunk(b, None).await;
    flipped_byte_in_a_chunk(b, Some(Key::generate())).await;
    println!("[{}] truncated manifest", b.name());
    truncated_manifest(b).await;
    println!("[{}] missing chunk", b.name());
    missing_chunk(b).await;
    println!("[{}] interrupted backup", b.name());
    interrupted_backup(b).await;
    println!("[{}] prune", b.name());
    prune_keeps_what_is_used(b).await;
    println!("[{}] lifecycle", b.name());
    repository_lifecycle(b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_in_memory() {
    conformance(&Memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_local_filesystem() {
    conformance(&Local(tempfile::tempdir().unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_s3() {
    match S3::from_env() {
        Some(s3) => conformance(&s3).await,
        None => {
            // CI (through scripts/s3-server.sh) sets TANDEM_REQUIRE_S3=1: no quiet skip there.
            assert!(
                std::env::var("TANDEM_REQUIRE_S3").as_deref() != Ok("1"),
                "TANDEM_REQUIRE_S3=1 but TANDEM_TEST_S3_URL is not set"
            );
            println!(
                "skipped: set TANDEM_TEST_S3_URL=s3://bucket/prefix (and AWS_ACCESS_KEY_ID, \
                 AWS_SECRET_ACCESS_KEY, AWS_REGION, TANDEM_BACKUP_S3_ENDPOINT) to run against \
                 S3, or run through scripts/s3-server.sh run"
            )
        }
    }
}
