//! `tandem drill`: glue between the command line and `tandem_drill::run`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

/// Arguments of `tandem drill`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
SCENARIO (TOML; examples in drills/)
  name = \"kill-primary\"            duration_secs = 45
  [[regions]] name = \"westus\"  pair = \"eastus\"  backup_interval_secs = 5
  [[regions]] name = \"eastus\"  pair = \"westus\"
  [load] rate = 4.0  concurrency = 4  stt = 2  tts = 1  speaker_verify = 1  speaker_enroll = 1
  [[faults]] at_secs = 10  region = \"westus\"  action = \"kill\"
      actions: kill, stop, cont, restart, blackhole, status (status = 503), delay
      (delay_ms = 800), heal, partition / heal_partition (the replication link between the
      region and its pair; clients still reach both)
  [goals] max_failed_calls, max_added_p99_ms, max_speaker_failover_secs,
      max_speaker_failback_secs, max_backup_age_secs, max_enrollments_lost, min_success_ratio
  [policy] the failover SDK's policy (as in a regions file)

OUTPUT
  DIR/report.json, DIR/report.md, DIR/chart.svg. Exit status 1 when a goal is missed.")]
pub struct DrillArgs {
    /// The scenario file.
    scenario: PathBuf,
    /// Where the report goes (default: drill-<scenario name> in the current directory).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep the temporary directory (the regions' configs, data and logs) for a post-mortem.
    #[arg(long)]
    keep: bool,
}

/// Runs the drill; Ctrl-C stops it, and everything it started is cleaned up either way.
pub async fn run(args: DrillArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.scenario)
        .with_context(|| format!("reading {}", args.scenario.display()))?;
    let scenario = tandem_drill::Scenario::from_toml(&text)?;
    let name = scenario.name.clone().unwrap_or_else(|| {
        args.scenario
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "drill".into())
    });
    let opts = tandem_drill::Options {
        bin: std::env::current_exe().context("finding the tandem binary")?,
        out: args.out.unwrap_or_else(|| format!("drill-{name}").into()),
        name,
        keep_temp: args.keep,
    };
    eprintln!(
        "tandem drill: {} region(s), {} s of load, {} fault(s); report in {}",
        scenario.regions.len(),
        scenario.duration_secs,
        scenario.faults.len(),
        opts.out.display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    // Leaving the select drops the drill, which stops its regions and removes its files.
    let outcome = tokio::select! {
        r = tandem_drill::run(&scenario, &opts) => r?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted; regions stopped, temporary files removed"),
        _ = term.recv() => bail!("terminated; regions stopped, temporary files removed"),
    };
    let r = &outcome.report;
    println!(
        "{}: {} calls, {} failed; report {}, chart {}",
        if r.passed { "PASSED" } else { "FAILED" },
        r.totals.calls,
        r.totals.failed,
        outcome.markdown.display(),
        outcome.chart.display()
    );
    for g in &r.goals {
        let measured = g
            .measured
            .map_or("not measured".into(), |m| format!("{m:.3}"));
        let verdict = if g.passed { "ok" } else { "MISSED" };
        println!(
            "  {:<28} {measured:>14} (goal {}) {verdict}",
            g.name, g.goal
        );
    }
    if !r.passed {
        let missed: Vec<&str> = r
            .goals
            .iter()
            .filter(|g| !g.passed)
            .map(|g| g.name.as_str())
            .collect();
        bail!("goals missed: {}", missed.join(", "));
    }
    Ok(())
}
