//! `tandem recover`: the offline failover of a whole region (restore, models, evaluations,
//! endpoints), timed step by step beside Azure's guide.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tandem_server::backup::{
    self as glue, ModelAction, RecoverOptions, RecoverProgress, RecoverReport, RestoreOutcome, Step,
};

use crate::backup_cmds::{
    empty_store, keys_json, open_repo, print_restored, snapshot_id, Bars, OnExisting, RepoArgs,
};
use crate::cli::RegionArgs;

/// `tandem recover`.
#[derive(Debug, Args)]
pub struct RecoverArgs {
    /// The snapshot to recover from (an id from `tandem backup list`, or `latest`).
    #[arg(long)]
    pub snapshot: String,
    /// The region to recover into: stopped, with an empty store (the same region, or
    /// another: then its resources get new keys, printed once).
    #[command(flatten)]
    pub region: RegionArgs,
    #[command(flatten)]
    pub repo: RepoArgs,
    /// When the target region already holds data.
    #[arg(long, value_enum, default_value_t = OnExisting::Refuse)]
    pub on_existing: OnExisting,
    /// Retrain every custom model that has datasets, even one whose artifact this region
    /// could reuse (to measure the full cost).
    #[arg(long)]
    pub retrain: bool,
}

impl RecoverProgress for Bars {
    fn start(&self, step: Step, items: usize) {
        let bar = ProgressBar::new(items as u64).with_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg} {elapsed}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        self.show(bar, step.label());
    }
    fn advance(&self, what: &str) {
        self.with(|b| {
            b.set_message(what.to_owned());
            b.inc(1);
        });
    }
    fn finish(&self, _: Step) {
        self.clear();
    }
}

/// `1.23 s`, `4 min 05 s`, `6 h`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        let (h, m) = (s / 3600, (s % 3600) / 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m:02} min")
        }
    } else if s >= 60 {
        if s.is_multiple_of(60) {
            format!("{} min", s / 60)
        } else {
            format!("{} min {:02} s", s / 60, s % 60)
        }
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

fn describe(action: &ModelAction) -> String {
    match action {
        ModelAction::Reused {
            base_model,
            base_sha256,
        } => format!(
            "reused artifact (same engine: {base_model}, base sha256 {})",
            &base_sha256[..base_sha256.len().min(12)]
        ),
        ModelAction::Retrained { reason } => format!("retrained ({reason})"),
        ModelAction::Kept { reason } => format!("kept as restored ({reason})"),
    }
}

fn action_json(action: &ModelAction) -> Value {
    match action {
        ModelAction::Reused {
            base_model,
            base_sha256,
        } => json!({"action": "reused", "base_model": base_model, "base_sha256": base_sha256}),
        ModelAction::Retrained { reason } => json!({"action": "retrained", "reason": reason}),
        ModelAction::Kept { reason } => json!({"action": "kept", "reason": reason}),
    }
}

fn wer(w: Option<f64>) -> String {
    w.map_or_else(|| "-".into(), |w| format!("{:.1} %", w * 100.0))
}

/// `tandem recover`.
pub async fn recover(args: RecoverArgs) -> anyhow::Result<()> {
    let cfg = args.region.resolve()?;
    // Warnings only (a failed training says why), unless TANDEM_LOG asks for more.
    let filter = tracing_subscriber::EnvFilter::try_from_env("TANDEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,whisper_rs=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let bars = Bars::new(args.repo.json);
    let repo = open_repo(&cfg, &args.repo, false).await?;
    let id = snapshot_id(&repo, &args.snapshot).await?;
    let (store, moved) = empty_store(&cfg, args.on_existing, "recover").await?;

    // 1. Upload: the restore.
    let started = Instant::now();
    let restored = glue::restore_region(&repo, &id, &store, &cfg.region, &bars)
        .await
        .context("restore refused or failed")?;
    let restore_took = started.elapsed();
    store.close().await;

    // 2–4. The region itself, as `tandem serve` builds it, engines loaded.
    if !args.repo.json {
        eprintln!("restored {id}; loading the speech engines");
    }
    let loading = Instant::now();
    let (state, threads) = crate::serve::build_state(&cfg).await?;
    let engine_cfg = cfg.clone();
    let engines =
        tokio::task::spawn_blocking(move || crate::serve::load_engines(&engine_cfg, threads))
            .await
            .context("loading the speech engines")??;
    state.set_engines(engines);
    let engines_took = loading.elapsed();
    let opts = RecoverOptions {
        retrain_all: args.retrain,
    };
    let mut report = glue::recover_region(&state, opts, &bars).await.context(
        "recovery failed (the data is restored: `tandem serve` finishes unfinished jobs)",
    )?;
    report.steps.insert(0, (Step::Restore, restore_took));
    state.store().close().await;

    if args.repo.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report_json(
                &cfg,
                &restored,
                &report,
                engines_took,
                moved
            ))?
        );
    } else {
        print_text(&cfg, &restored, &report, engines_took, moved);
    }
    let broken = report
        .endpoints
        .iter()
        .filter(|e| e.problem.is_some())
        .count();
    if broken > 0 {
        bail!("{broken} endpoints cannot serve (see above)");
    }
    Ok(())
}

fn report_json(
    cfg: &tandem_core::RegionConfig,
    restored: &RestoreOutcome,
    report: &RecoverReport,
    engines_took: Duration,
    moved: Option<std::path::PathBuf>,
) -> Value {
    let total: Duration = report.steps.iter().map(|(_, d)| *d).sum();
    json!({
        "snapshot": restored.snapshot,
        "source_region": restored.source_region,
        "region": cfg.region.to_string(),
        "files": restored.files,
        "bytes": restored.bytes,
        "moved_aside": moved.map(|p| p.display().to_string()),
        "new_keys": keys_json(restored),
        "steps": report.steps.iter().map(|(s, d)| json!({
            "step": s.label(), "seconds": d.as_secs_f64(),
            "azure_guide_seconds": s.azure_guide().as_secs(),
        })).collect::<Vec<_>>(),
        "seconds": total.as_secs_f64(),
        "engines_seconds": engines_took.as_secs_f64(),
        "azure_guide_seconds": Step::ALL.iter().map(|s| s.azure_guide().as_secs()).sum::<u64>(),
        "models": report.models.iter().map(|m| {
            let mut v = action_json(&m.action);
            v["id"] = json!(m.id.to_string());
            v["resource"] = json!(m.resource.to_string());
            v["name"] = json!(m.name);
            v["status"] = json!(m.status.as_str());
            v["error"] = json!(m.error);
            v
        }).collect::<Vec<_>>(),
        "evaluations": report.evaluations.iter().map(|e| json!({
            "id": e.id.to_string(), "resource": e.resource.to_string(), "name": e.name,
            "status": e.status.as_str(), "error": e.error,
            "wer_before": e.wer_before, "wer_after": e.wer_after,
        })).collect::<Vec<_>>(),
        "endpoints": report.endpoints.iter().map(|e| json!({
            "id": e.id.to_string(), "resource": e.resource.to_string(), "name": e.name, "model": e.model.map(|m| m.to_string()),
            "ready": e.problem.is_none(), "problem": e.problem, "seconds": e.took.as_secs_f64(),
        })).collect::<Vec<_>>(),
    })
}

fn print_text(
    cfg: &tandem_core::RegionConfig,
    restored: &RestoreOutcome,
    report: &RecoverReport,
    engines_took: Duration,
    moved: Option<std::path::PathBuf>,
) {
    println!(
        "recovered snapshot {} (region {}) into {}: {} files, {} bytes",
        restored.snapshot, restored.source_region, cfg.region, restored.files, restored.bytes
    );
    print_restored(cfg, restored, moved.as_ref());
    println!();
    println!("{:<16} {:>14} {:>14}", "STEP", "TANDEM", "AZURE GUIDE");
    for (s, d) in &report.steps {
        println!(
            "{:<16} {:>14} {:>14}",
            s.label(),
            human(*d),
            human(s.azure_guide())
        );
    }
    let total: Duration = report.steps.iter().map(|(_, d)| *d).sum();
    let guide: Duration = Step::ALL.iter().map(|s| s.azure_guide()).sum();
    println!("{:<16} {:>14} {:>14}", "total", human(total), human(guide));
    println!(
        "(and {} to load the speech engines, as a region's start does)",
        human(engines_took)
    );
    println!();
    for m in &report.models {
        print!("model {} {:?}: {}", m.id, m.name, describe(&m.action));
        match &m.error {
            Some(e) => println!("; FAILED: {e}"),
            None => println!(),
        }
    }
    for e in &report.evaluations {
        print!(
            "evaluation {} {:?}: WER {} / {} before, {} / {} now",
            e.id,
            e.name,
            wer(e.wer_before[0]),
            wer(e.wer_before[1]),
            wer(e.wer_after[0]),
            wer(e.wer_after[1])
        );
        match &e.error {
            Some(err) => println!("; FAILED: {err}"),
            None => println!(),
        }
    }
    for e in &report.endpoints {
        match &e.problem {
            None => println!(
                "endpoint {} {:?}: serving (model loaded in {})",
                e.id,
                e.name,
                human(e.took)
            ),
            Some(p) => println!("endpoint {} {:?}: CANNOT SERVE: {p}", e.id, e.name),
        }
    }
}
