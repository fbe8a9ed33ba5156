//! `tandem backup …` and `tandem restore`: the region's backup repository from the command line.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tandem_backup::{
    BackupOptions, Phase, Progress, PruneOptions, Repository, Retention, SnapshotStatus,
};
use tandem_core::RegionConfig;
use tandem_server::backup::{self as glue, RegionSource, RestoreOutcome};
use tandem_store::Store;

use crate::cli::RegionArgs;

/// Where the repository is and how to read it. Shared by every backup command.
#[derive(Debug, Clone, Args)]
pub struct RepoArgs {
    /// The repository: `file:///path` or `s3://bucket/prefix` (default: the region's
    /// `[backup] target`, else `file://<data-dir>-backups`). S3 endpoint and credentials come
    /// from `[backup] s3_*` or the AWS_* environment (AWS_ENDPOINT_URL, AWS_REGION,
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    #[arg(long, env = "TANDEM_BACKUP_TARGET")]
    pub target: Option<String>,
    /// Key file of an encrypted repository (default: the region's `[backup] key_file`).
    #[arg(long, env = "TANDEM_BACKUP_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Print JSON (for scripts) instead of text; no progress bars.
    #[arg(long)]
    pub json: bool,
}

/// Backup subcommands.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back the region up now: a point-in-time metadata export and every blob, deduplicated
    /// against what the repository already holds (an unchanged re-backup uploads only its
    /// manifest). Creates the repository on first use.
    Run {
        #[command(flatten)]
        region: RegionArgs,
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// List the snapshots, oldest first.
    List {
        #[command(flatten)]
        region: RegionArgs,
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Check every snapshot: manifests readable, every chunk present. With --read-data, also
    /// re-read and re-hash every chunk. Exits 1 naming each damaged snapshot and chunk.
    Verify {
        #[command(flatten)]
        region: RegionArgs,
        #[command(flatten)]
        repo: RepoArgs,
        /// Re-read and re-hash every chunk (slow: reads the whole repository).
        #[arg(long)]
        read_data: bool,
    },
    /// Forget the snapshots the retention policy does not keep, then delete the chunks no
    /// kept snapshot uses (never one a kept snapshot needs).
    Prune {
        #[command(flatten)]
        region: RegionArgs,
        #[command(flatten)]
        repo: RepoArgs,
        /// Keep the newest N snapshots (default: `[backup] keep_last`).
        #[arg(long)]
        keep_last: Option<u32>,
        /// Keep the newest snapshot of each of the last N hours (default: `[backup] keep_hourly`).
        #[arg(long)]
        keep_hourly: Option<u32>,
        /// Keep the newest snapshot of each of the last N days (default: `[backup] keep_daily`).
        #[arg(long)]
        keep_daily: Option<u32>,
        /// Keep unreferenced chunks younger than this many seconds: a backup running now may
        /// be about to use them (default: twice the backup interval, at least 900).
        #[arg(long)]
        grace_secs: Option<u64>,
        /// Show what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a new random key file for an encrypted repository (then set `[backup] key_file`
    /// before the first backup). Keep a copy away from the region: without it the backups
    /// cannot be read.
    Keygen {
        /// Where to write the key (refuses to overwrite).
        #[arg(long)]
        out: PathBuf,
    },
}

/// What to do when the region restored into already holds data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnExisting {
    /// Refuse (the default): nothing is touched.
    Refuse,
    /// Rename the data directory to `<data-dir>.before-restore-<time>` and restore into a new
    /// one. Only for the embedded storage (SQLite and files under the data directory).
    MoveAside,
}

/// `tandem restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The snapshot to restore (an id from `tandem backup list`, or `latest`).
    #[arg(long)]
    pub snapshot: String,
    /// The region to restore into (the same region, or another: then its resources get new
    /// keys, printed once).
    #[command(flatten)]
    pub region: RegionArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// When the target region already holds data.
    #[arg(long, value_enum, default_value_t = OnExisting::Refuse)]
    pub on_existing: OnExisting,
}

/// Progress bars on stderr (hidden when it is not a terminal, or with --json).
pub(crate) struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    quiet: bool,
}

impl Bars {
    /// Bars unless `quiet` (--json).
    pub(crate) fn new(quiet: bool) -> Self {
        Bars {
            bar: Mutex::new(None),
            quiet,
        }
    }

    /// Shows `bar` labelled `label` in place of the current one.
    pub(crate) fn show(&self, bar: ProgressBar, label: &str) {
        if self.quiet {
            return;
        }
        bar.set_prefix(label.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        *self.bar.lock().expect("not poisoned") = Some(bar);
    }

    /// Runs `f` on the current bar, if one is shown.
    pub(crate) fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(b) = self.bar.lock().expect("not poisoned").as_ref() {
            f(b);
        }
    }

    /// Removes the current bar.
    pub(crate) fn clear(&self) {
        if let Some(b) = self.bar.lock().expect("not poisoned").take() {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bars {
    fn start(&self, phase: Phase, total: Option<u64>) {
        let label = match phase {
            Phase::Scan => "scan",
            Phase::Backup => "backup",
            Phase::Verify => "verify",
            Phase::Restore => "restore",
            Phase::Prune => "prune",
        };
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(
                ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner(),
        };
        self.show(bar, label);
    }
    fn advance(&self, bytes: u64) {
        self.with(|b| b.inc(bytes));
    }
    fn finish(&self, _phase: Phase) {
        self.clear();
    }
}

async fn open_store(cfg: &RegionConfig) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    tandem_server::open_region_store(cfg)
        .await
        .context("opening the region's store")
}

/// Opens the store of `cfg`'s region, empty: refused when it holds data, unless `on_existing`
/// moves its data directory aside first (then also returned). `verb` names the command.
pub(crate) async fn empty_store(
    cfg: &RegionConfig,
    on_existing: OnExisting,
    verb: &str,
) -> anyhow::Result<(Store, Option<PathBuf>)> {
    let store = open_store(cfg).await?;
    if glue::is_empty(&store).await? {
        return Ok((store, None));
    }
    store.close().await;
    if on_existing == OnExisting::Refuse {
        bail!(
            "region {} already holds data in {}: {verb} into an empty region, or pass --on-existing move-aside",
            cfg.region,
            cfg.data_dir.display()
        );
    }
    if cfg.storage.metadata_url.is_some() || cfg.storage.blob_url.is_some() {
        bail!("--on-existing move-aside works only with the embedded storage under the data directory");
    }
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut name = cfg.data_dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".before-restore-{stamp}"));
    let aside = cfg.data_dir.with_file_name(name);
    std::fs::rename(&cfg.data_dir, &aside)
        .with_context(|| format!("moving {} to {}", cfg.data_dir.display(), aside.display()))?;
    Ok((open_store(cfg).await?, Some(aside)))
}

/// `id`, or the newest snapshot's id for `latest`.
pub(crate) async fn snapshot_id(repo: &Repository, id: &str) -> anyhow::Result<String> {
    if id != "latest" {
        return Ok(id.to_owned());
    }
    repo.snapshot_ids()
        .await?
        .pop()
        .context("the repository holds no snapshot")
}

/// The keys a restore issued, as JSON.
pub(crate) fn keys_json(out: &RestoreOutcome) -> Vec<serde_json::Value> {
    out.new_keys
        .iter()
        .map(|k| json!({"resource": k.resource.to_string(), "key1": k.key1.expose(), "key2": k.key2.expose()}))
        .collect()
}

/// Where the old data went and the keys a restore issued (shown only now), as text.
pub(crate) fn print_restored(cfg: &RegionConfig, out: &RestoreOutcome, moved: Option<&PathBuf>) {
    if let Some(p) = moved {
        println!("the previous data is in {}", p.display());
    }
    if out.new_keys.is_empty() {
        return;
    }
    println!(
        "keys are region-bound: new keys for {} (shown only now):",
        cfg.region
    );
    for k in &out.new_keys {
        println!("  resource {}", k.resource);
        println!("    key1: {}", k.key1.expose());
        println!("    key2: {}", k.key2.expose());
    }
    if out.dropped_rows > 0 {
        println!(
            "left out {} rows of the source's paired-region data",
            out.dropped_rows
        );
    }
}

pub(crate) async fn open_repo(
    cfg: &RegionConfig,
    r: &RepoArgs,
    create: bool,
) -> anyhow::Result<Repository> {
    glue::open_repository(cfg, r.target.as_deref(), r.key_file.as_deref(), create)
        .await
        .context("opening the backup repository")
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Runs a backup subcommand.
pub async fn backup(cmd: BackupCommand) -> anyhow::Result<()> {
    match cmd {
        BackupCommand::Run { region, repo } => {
            let cfg = region.resolve()?;
            let store = open_store(&cfg).await?;
            let r = open_repo(&cfg, &repo, true).await?;
            let started = Instant::now();
            let opts = BackupOptions {
                region: cfg.region.to_string(),
                host: tandem_core::host_name(),
                ..BackupOptions::default()
            };
            let s = r
                .backup(
                    &RegionSource::new(store.clone()),
                    &opts,
                    &Bars::new(repo.json),
                )
                .await
                .context("backup failed (earlier snapshots are intact)")?;
            store.close().await;
            let took = started.elapsed().as_secs_f64();
            if repo.json {
                println!(
                    "{}",
                    json!({"snapshot": s.id, "created": rfc3339(s.created), "region": s.region,
                           "files": s.totals.files, "bytes": s.totals.bytes,
                           "new_chunks": s.totals.new_chunks, "new_bytes": s.totals.new_bytes,
                           "stored_bytes": s.totals.stored_bytes, "seconds": took})
                );
            } else {
                println!("snapshot {} of {}", s.id, s.region);
                println!(
                    "  {} files, {} bytes; uploaded {} new chunks ({} bytes, {} stored) in {took:.2} s",
                    s.totals.files,
                    s.totals.bytes,
                    s.totals.new_chunks,
                    s.totals.new_bytes,
                    s.totals.stored_bytes
                );
            }
        }
        BackupCommand::List { region, repo } => {
            let cfg = region.resolve()?;
            let r = open_repo(&cfg, &repo, false).await?;
            let list = r.list().await?;
            if repo.json {
                let v: Vec<_> = list
                    .iter()
                    .map(|s| match &s.summary {
                        Some(m) => json!({"id": s.id, "time": rfc3339(s.time), "region": m.region,
                                          "host": m.host, "files": m.totals.files,
                                          "bytes": m.totals.bytes, "parent": m.parent}),
                        None => json!({"id": s.id, "time": rfc3339(s.time), "error": s.error}),
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{:<30} {:<10} {:>7} {:>14}",
                    "SNAPSHOT", "REGION", "FILES", "BYTES"
                );
                for s in &list {
                    match &s.summary {
                        Some(m) => println!(
                            "{:<30} {:<10} {:>7} {:>14}",
                            s.id, m.region, m.totals.files, m.totals.bytes
                        ),
                        None => println!(
                            "{:<30} UNREADABLE: {}",
                            s.id,
                            s.error.as_deref().unwrap_or("?")
                        ),
                    }
                }
            }
        }
        BackupCommand::Verify {
            region,
            repo,
            read_data,
        } => {
            let cfg = region.resolve()?;
            let r = open_repo(&cfg, &repo, false).await?;
            let report = r.verify(read_data, &Bars::new(repo.json)).await?;
            if repo.json {
                let snaps: Vec<_> = report
                    .snapshots
                    .iter()
                    .map(|c| {
                        let problems = c.to_error().map(|e| e.to_string());
                        json!({"snapshot": c.snapshot, "ok": c.is_ok(), "problem": problems,
                               "status": status_json(&c.status)})
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "ok": report.is_ok(), "read_data": read_data,
                        "chunks_referenced": report.chunks_referenced,
                        "chunks_read": report.chunks_read, "bytes_read": report.bytes_read,
                        "orphan_chunks": report.orphan_chunks, "snapshots": snaps,
                    }))?
                );
            } else {
                for c in &report.snapshots {
                    if c.is_ok() {
                        println!("ok       {}", c.snapshot);
                    } else {
                        println!("DAMAGED  {}", c.snapshot);
                        for line in describe(&c.status) {
                            println!("         {line}");
                        }
                    }
                }
                println!(
                    "{} snapshots, {} chunks referenced, {} read ({} bytes), {} unreferenced",
                    report.snapshots.len(),
                    report.chunks_referenced,
                    report.chunks_read,
                    report.bytes_read,
                    report.orphan_chunks
                );
            }
            if !report.is_ok() {
                bail!(
                    "damaged snapshots: {}",
                    report
                        .damaged()
                        .map(|c| c.snapshot.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        BackupCommand::Prune {
            region,
            repo,
            keep_last,
            keep_hourly,
            keep_daily,
            grace_secs,
            dry_run,
        } => {
            let cfg = region.resolve()?;
            let r = open_repo(&cfg, &repo, false).await?;
            let policy = Retention {
                keep_last: keep_last.unwrap_or(cfg.backup.keep_last),
                keep_hourly: keep_hourly.unwrap_or(cfg.backup.keep_hourly),
                keep_daily: keep_daily.unwrap_or(cfg.backup.keep_daily),
            };
            let opts = PruneOptions {
                dry_run,
                grace: grace_secs
                    .map(Duration::from_secs)
                    .unwrap_or_else(|| glue::prune_grace(&cfg)),
                now: None,
            };
            let p = r.prune(&policy, &opts, &Bars::new(repo.json)).await?;
            if repo.json {
                let kept: Vec<_> = p
                    .kept
                    .iter()
                    .map(|(id, why)| json!({"id": id, "why": format!("{why:?}")}))
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "dry_run": p.dry_run, "kept": kept, "forgotten": p.forgotten,
                        "deleted_chunks": p.deleted_chunks, "deleted_bytes": p.deleted_bytes,
                        "chunks_in_grace": p.chunks_in_grace, "chunks_in_use": p.chunks_in_use,
                    }))?
                );
            } else {
                let verb = if p.dry_run { "would forget" } else { "forgot" };
                for id in &p.forgotten {
                    println!("{verb} {id}");
                }
                println!(
                    "kept {} snapshots; {} {} unused chunks ({} bytes); {} chunks in use, {} younger than the grace",
                    p.kept.len(),
                    if p.dry_run { "would delete" } else { "deleted" },
                    p.deleted_chunks,
                    p.deleted_bytes,
                    p.chunks_in_use,
                    p.chunks_in_grace
                );
            }
        }
        BackupCommand::Keygen { out } => {
            if out.exists() {
                bail!("{} exists: not overwriting a key", out.display());
            }
            let key = tandem_backup::generate_key_file(&out)?;
            println!("wrote {} (key check {})", out.display(), key.check());
            eprintln!("keep a copy of this file away from the region: without it, the backups cannot be read");
        }
    }
    Ok(())
}

fn status_json(s: &SnapshotStatus) -> serde_json::Value {
    match s {
        SnapshotStatus::Ok => json!("ok"),
        SnapshotStatus::ManifestUnreadable { reason } => {
            json!({"manifest_unreadable": reason})
        }
        SnapshotStatus::Damaged { chunks } => json!({"damaged_chunks": chunks
            .iter()
            .map(|c| json!({"chunk": c.chunk, "missing": c.missing, "reason": c.reason,
                            "paths": c.paths}))
            .collect::<Vec<_>>()}),
    }
}

/// One line per problem of a snapshot.
fn describe(s: &SnapshotStatus) -> Vec<String> {
    match s {
        SnapshotStatus::Ok => Vec::new(),
        SnapshotStatus::ManifestUnreadable { reason } => {
            vec![format!("manifest unreadable: {reason}")]
        }
        SnapshotStatus::Damaged { chunks } => chunks
            .iter()
            .map(|c| {
                format!(
                    "chunk {} {}: {} (used by {})",
                    c.chunk,
                    if c.missing { "missing" } else { "damaged" },
                    c.reason,
                    c.paths.join(", ")
                )
            })
            .collect(),
    }
}

/// `tandem restore`.
pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let cfg = args.region.resolve()?;
    let r = open_repo(&cfg, &args.repo, false).await?;
    let id = snapshot_id(&r, &args.snapshot).await?;
    let (store, moved) = empty_store(&cfg, args.on_existing, "restore").await?;
    let started = Instant::now();
    let out = glue::restore_region(&r, &id, &store, &cfg.region, &Bars::new(args.repo.json))
        .await
        .context("restore refused or failed")?;
    store.close().await;
    let took = started.elapsed().as_secs_f64();
    if args.repo.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "snapshot": out.snapshot, "source_region": out.source_region,
                "region": cfg.region.to_string(), "files": out.files, "bytes": out.bytes,
                "rows": out.rows.iter().map(|(t, n)| (t.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "new_keys": keys_json(&out), "dropped_rows": out.dropped_rows, "seconds": took,
                "moved_aside": moved.as_ref().map(|p| p.display().to_string()),
            }))?
        );
    } else {
        println!(
            "restored snapshot {} (region {}) into {}: {} files, {} bytes in {took:.2} s",
            out.snapshot, out.source_region, cfg.region, out.files, out.bytes
        );
        print_restored(&cfg, &out, moved.as_ref());
    }
    Ok(())
}
