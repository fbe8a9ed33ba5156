//! Times a backup, an unchanged re-backup, a verify and a restore of a directory:
//! `cargo run --release -p tandem-backup --example throughput -- SRC_DIR REPO_URL OUT_DIR [KEY_FILE]`
//! (S3 settings from the environment, see `S3Options::from_env`; `FSYNC=0` skips local fsyncs,
//! `PREFLIGHT=0` skips restore's read-back preflight, `RESTORE_ONLY=1` skips the backups).

use std::time::Instant;

use bytes::Bytes;
use tandem_backup::*;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src, url, out, rest @ ..] = args.as_slice() else {
        eprintln!("usage: throughput SRC_DIR REPO_URL OUT_DIR [KEY_FILE]");
        std::process::exit(2);
    };
    let opts = RepoOptions {
        key: rest
            .first()
            .map(|k| Key::from_file(k.as_ref()))
            .transpose()?,
        s3: S3Options::from_env(),
        fsync: std::env::var("FSYNC").map_or(true, |v| v != "0"),
        ..RepoOptions::default()
    };
    let repo = Repository::open_or_init(url, &opts).await?;
    let source = DirSource {
        root: src.into(),
        metadata: Bytes::new(),
    };
    let labels: &[&str] = if std::env::var("RESTORE_ONLY").is_ok() {
        &[]
    } else {
        &["backup", "unchanged re-backup"]
    };
    for label in labels {
        let t = Instant::now();
        let s = repo
            .backup(&source, &BackupOptions::default(), &NoProgress)
            .await?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{label}: {secs:.2} s, {} files, {:.1} MB, {} new chunks ({:.1} MB stored), {:.0} MB/s",
            s.totals.files,
            s.totals.bytes as f64 / 1e6,
            s.totals.new_chunks,
            s.totals.stored_bytes as f64 / 1e6,
            s.totals.bytes as f64 / 1e6 / secs
        );
    }
    let t = Instant::now();
    let report = repo.verify(true, &NoProgress).await?;
    println!(
        "verify --read-data: {:.2} s, ok={}",
        t.elapsed().as_secs_f64(),
        report.is_ok()
    );
    let id = repo.snapshot_ids().await?.pop().expect("a snapshot");
    // Flush dirty pages first, so the restore is not throttled by the backup's writeback.
    let _ = std::process::Command::new("sync").status();
    let t = Instant::now();
    let sink = DirSink {
        root: out.into(),
        metadata_file: None,
    };
    let r = repo
        .restore(&id, &sink, &RestoreOptions::default(), &NoProgress)
        .await?;
    println!(
        "restore (with read-back preflight): {:.2} s, {:.1} MB",
        t.elapsed().as_secs_f64(),
        r.bytes as f64 / 1e6
    );
    Ok(())
}
