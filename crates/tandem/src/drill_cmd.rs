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
  [[regions]] name = \"northeu\"  endpoint = \"http://10.0.0.7:8080\"
      key_file = \"northeu.key\"  admin_token_file = \"northeu.admin\"
      An existing, already running region instead of one the drill starts: the drill starts
      and stops no process for it, checks at setup that it answers /readyz and that
      /.well-known/tandem names it, and puts its fault proxy in front (http:// only).
      key_file (required): a resource key of that region; admin_token_file (optional): its
      admin token, for the replication digests; without it, speaker setup waits for the
      profile in both regions instead, and enrollments are not read back (max_enrollments_lost
      is not measured). Both relative to the scenario. Takes only proxy faults (blackhole,
      status, delay, heal); no backup_interval_secs or extra_config; pairs only with another
      existing region. Mix freely with regions the drill starts.
  [load] rate = 4.0  concurrency = 4  stt = 2  tts = 1  speaker_verify = 1  speaker_enroll = 1
      stt_custom = 1  tts_custom = 1  gateway_share = 0.5
      stt_custom: the biology model, trained in the first region, copied (Models_CopyTo) to
      its pair and deployed in both; tts_custom: joe's custom voice, deployed in the first
      region, copied to its pair and deployed there. gateway_share: part of the STT/TTS calls
      go through a `tandem gateway` the drill starts, as an Azure script would call it.
  [seed] custom_speech_data = \"../../shared/data/custom-speech-biology\" (relative to the
      scenario; default $TANDEM_SHARED_DATA/custom-speech-biology)  model_dir = (joe's Piper
      voice; default $TANDEM_MODEL_DIR)
  [[faults]] at_secs = 10  region = \"westus\"  action = \"kill\"
      actions: kill, stop, cont, restart, blackhole, status (status = 503), delay
      (delay_ms = 800), heal, partition / heal_partition (the replication link between the
      region and its pair; clients still reach both)
  [goals] max_failed_calls, max_added_p99_ms, max_speaker_failover_secs,
      max_speaker_failback_secs, max_backup_age_secs, max_enrollments_lost,
      max_replication_lag_p99_secs, min_success_ratio,
      max_custom_speech_failover_secs, max_custom_voice_failover_secs, max_failed_custom_calls
  [policy] the failover SDK's policy (as in a regions file)

OUTPUT
  DIR/report.json, DIR/report.md, DIR/chart.svg and DIR/chart.png (the PNG's text needs a
  TrueType font: fonts-dejavu-core, or TANDEM_CHART_FONT=/path/font.ttf). Exit status 1 when a
  goal is missed.")]
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
        base_dir: args
            .scenario
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default(),
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
        "{}: {} calls, {} failed; report {}, chart {}{}",
        if r.passed { "PASSED" } else { "FAILED" },
        r.totals.calls,
        r.totals.failed,
        outcome.markdown.display(),
        outcome.chart.display(),
        outcome
            .png
            .as_ref()
            .map_or(String::new(), |p| format!(" and {}", p.display()))
    );
    for g in &r.goals {
        let measured = g
            .measured
            .map_or("not measured".into(), |m| format!("{m:.3}"));
        let verdict = if g.passed { "ok" } else { "MISSED" };
        println!(
            "  {:<32} {measured:>12} (goal {}) {verdict}",
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
