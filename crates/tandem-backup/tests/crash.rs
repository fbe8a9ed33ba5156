//! A real `kill -9` in the middle of a backup: earlier snapshots stay intact, the repository
//! verifies clean, and the next backup completes. The test re-runs its own binary as the child
//! that gets killed.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::*;
use tandem_backup::*;

const CHILD_ENV: &str = "TANDEM_BACKUP_CRASH_CHILD_REPO";

fn big_source(seed: u64) -> MemSource {
    let files: Vec<(String, Vec<u8>)> = (0..24)
        .map(|i| (format!("f{i:02}"), noise(1_000_000, seed * 100 + i)))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(p, d)| (p.as_str(), d.clone())).collect();
    MemSource::new(b"meta", &refs)
}

fn small_chunks() -> RepoOptions {
    RepoOptions {
        chunker: ChunkerParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            ..ChunkerParams::default()
        },
        concurrency: 2,
        // kill -9 keeps the page cache: fsync is about power loss, and slow with tiny chunks.
        fsync: false,
        ..RepoOptions::default()
    }
}

/// The child: backs up a large source forever, until killed. Does nothing in a normal run.
#[tokio::test]
async fn crash_child() {
    let Ok(url) = std::env::var(CHILD_ENV) else {
        return;
    };
    let repo = Repository::open(&url, &small_chunks()).await.unwrap();
    for seed in 10.. {
        repo.backup(&big_source(seed), &BackupOptions::default(), &NoProgress)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_backup_leaves_earlier_snapshots_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("file://{}/repo", tmp.path().display());
    let repo = Repository::init(&url, &small_chunks()).await.unwrap();
    let src = big_source(1);
    let first = repo
        .backup(&src, &BackupOptions::default(), &NoProgress)
        .await
        .unwrap();
    let chunks_before = keys(repo.store()).await.len();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture"])
        .env(CHILD_ENV, &url)
        .spawn()
        .unwrap();
    // Wait until the child has stored new chunks, then kill it mid-backup.
    let deadline = Instant::now() + Duration::from_secs(60);
    while keys(repo.store()).await.len() < chunks_before + 20 {
        assert!(Instant::now() < deadline, "child made no progress");
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let report = repo.verify(true, &NoProgress).await.unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(report.orphan_chunks > 0, "the killed backup left orphans");
    let ids = repo.snapshot_ids().await.unwrap();
    assert!(ids.contains(&first.id));
    let sink = MemSink::default();
    repo.restore(&first.id, &sink, &RestoreOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(sink.files().len(), 25);

    let next = repo
        .backup(&big_source(2), &BackupOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert!(repo.verify(true, &NoProgress).await.unwrap().is_ok());
    assert!(repo.snapshot_ids().await.unwrap().contains(&next.id));
}
