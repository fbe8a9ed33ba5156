//! `tandem workers`: the background workers of a running region, read from its `/status.json`.

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;

/// Arguments of `tandem workers`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
WORKERS
  engines          loading the speech engines at start (busy until /readyz is 200)
  replication      the follower of the paired region's speaker log (off without a pair);
                   'runs' counts the changes it applied, 'error' means the pair does not answer
  backup           a snapshot every [backup] interval_secs (off at 0); only the node holding the
                   region's backup lease backs up, the others say so in DETAIL
  job-resume       the scan that restarts unfinished trainings and evaluations (every
                   job_lease_secs) and takes over jobs of a dead node
  log-retention    the hourly sweep of endpoint logs past log_retention_days
  job/train/…      a training, evaluation or model copy running on this node (busy), and the
  job/evaluate/…   last 20 that finished here (done)
  job/copy/…

STATES
  idle   waiting for its next run      busy   running now
  error  its last run failed (it retries; LAST ERROR says why)
  off    turned off by the configuration      done   a job that finished

EXAMPLES
  tandem workers --endpoint http://127.0.0.1:5001
  tandem workers --endpoint http://127.0.0.1:5001 --json | jq '.[] | select(.state == \"error\")'

The same list is the 'workers' section of GET /status.json (no credentials needed) and is shown
on the region's /status page.")]
pub struct WorkersArgs {
    /// The region's (or one node's) base URL, e.g. http://127.0.0.1:5001.
    #[arg(long, env = "TANDEM_ENDPOINT")]
    endpoint: String,
    /// Print the workers as JSON (an array) instead of a table.
    #[arg(long)]
    json: bool,
    /// How long to wait for the region, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout_secs: u64,
}

fn age(now: i64, t: Option<i64>) -> String {
    match t {
        None => "never".to_owned(),
        Some(t) => {
            let s = (now - t).max(0);
            match s {
                0..=119 => format!("{s}s ago"),
                120..=7199 => format!("{}m ago", s / 60),
                _ => format!("{}h ago", s / 3600),
            }
        }
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The table `tandem workers` prints.
fn table(doc: &Value) -> String {
    let now = doc["now"].as_i64().unwrap_or(0);
    let mut out = format!(
        "region {} (node {})\n{:<36} {:<12} {:<6} {:<10} {:>6} {:>6}  DETAIL\n",
        doc["region"].as_str().unwrap_or("?"),
        doc["node"].as_str().unwrap_or("?"),
        "WORKER",
        "KIND",
        "STATE",
        "LAST RUN",
        "RUNS",
        "ERRORS"
    );
    for w in doc["workers"].as_array().into_iter().flatten() {
        let s = |k: &str| w[k].as_str().unwrap_or("").to_owned();
        let mut detail = s("detail");
        if let Some(e) = w["lastError"].as_str() {
            detail = format!("{detail} — last error: {e}");
        }
        out.push_str(&format!(
            "{:<36} {:<12} {:<6} {:<10} {:>6} {:>6}  {}\n",
            cut(&s("name"), 36),
            s("kind"),
            s("state"),
            age(now, w["lastRun"].as_i64()),
            w["runs"].as_u64().unwrap_or(0),
            w["errors"].as_u64().unwrap_or(0),
            detail
        ));
    }
    out
}

/// Runs `tandem workers`.
pub async fn run(a: WorkersArgs) -> anyhow::Result<()> {
    let url = format!("{}/status.json", a.endpoint.trim_end_matches('/'));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(a.timeout_secs))
        .build()?;
    let resp = http
        .get(&url)
        .send()
        .await
        .with_context(|| format!("asking {url}"))?;
    if !resp.status().is_success() {
        bail!("{url} answered {}", resp.status());
    }
    let doc: Value = resp
        .json()
        .await
        .with_context(|| format!("reading {url}"))?;
    if doc["kind"] != "region" {
        bail!("{url} is not a region's status (a gateway? give a region's URL)");
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&doc["workers"])?);
    } else {
        print!("{}", table(&doc));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_a_row_per_worker_with_its_error() {
        let doc = serde_json::json!({
            "region": "westus", "node": "n1", "now": 1000,
            "workers": [
                {"name": "backup", "kind": "backup", "state": "error", "lastRun": 990,
                 "runs": 3, "errors": 1, "detail": "every 60 s", "lastError": "disk full"},
                {"name": "replication", "kind": "replication", "state": "off", "lastRun": null,
                 "runs": 0, "errors": 0, "detail": "no pair configured"},
            ]
        });
        let t = table(&doc);
        let lines: Vec<_> = t.lines().collect();
        assert_eq!(lines.len(), 4, "{t}");
        assert!(lines[2].starts_with("backup") && lines[2].contains("10s ago"));
        assert!(lines[2].contains("last error: disk full"));
        assert!(lines[3].contains("off") && lines[3].contains("never"));
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}
