//! The operator views on real processes: each region's `/status.json` and `/metrics`, `tandem
//! workers`, and the gateway's aggregate `/status` page loaded in headless Chromium while one
//! region is down (kill -9). The page is asserted on the DOM after its script ran (it renders
//! the embedded JSON, then fetches `/status.json`), and a screenshot is kept under
//! `target/status-page/`.
//!
//! Chromium (`apt-get install chromium`, or `TANDEM_CHROMIUM=/path`) is needed for the browser
//! part: without it that part is skipped with a message (the rest still runs), unless
//! `TANDEM_REQUIRE_CHROMIUM=1` (CI), where the test fails at once.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use tandem_testkit::{FaultProxy, GatewayProcess};

/// The Chromium binary, or `None` (after saying why) when the browser part should skip; panics
/// when it is missing and `TANDEM_REQUIRE_CHROMIUM=1`.
fn chromium() -> Option<PathBuf> {
    // TANDEM_CHROMIUM, when set, is the only candidate (so its absence can be tried).
    let candidates: Vec<PathBuf> = match std::env::var_os("TANDEM_CHROMIUM") {
        Some(p) => vec![PathBuf::from(p)],
        None => ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .map(PathBuf::from)
            .to_vec(),
    };
    for c in candidates {
        if c.is_file() {
            return Some(c);
        }
    }
    let required = std::env::var("TANDEM_REQUIRE_CHROMIUM").as_deref() == Ok("1");
    assert!(
        !required,
        "TANDEM_REQUIRE_CHROMIUM=1 but no chromium found (apt-get install -y chromium, or set TANDEM_CHROMIUM)"
    );
    eprintln!(
        "SKIPPING the browser part: the status page browser test needs headless Chromium: apt-get install -y chromium \
         (or TANDEM_CHROMIUM=/path/to/chromium); TANDEM_REQUIRE_CHROMIUM=1 makes its absence fail"
    );
    None
}

/// Where screenshots are kept: `target/status-page/`.
fn artifact_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("status-page");
    std::fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

/// Runs headless Chromium on `url` with `args` (e.g. `--dump-dom`), giving the page's script
/// virtual time to fetch and render. Returns stdout.
async fn browse(chromium: &Path, url: &str, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-dev-shm-usage",
        "--virtual-time-budget=4000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("running chromium");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(profile);
    String::from_utf8(out.stdout).unwrap()
}

async fn get_json(url: &str) -> Value {
    let r = http().get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    r.json().await.unwrap()
}

/// Polls `url`'s JSON until `pred` holds; panics with the last document after `secs`.
async fn until(url: &str, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = get_json(url).await;
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: never true: {v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pair_config(pair: &str, peer_url: &str, secret: &Path) -> Vec<String> {
    vec![
        format!("pair = \"{pair}\""),
        format!("peer_secret_file = \"{}\"", secret.display()),
        "[replication]".into(),
        "retry_base_ms = 50".into(),
        "retry_max_ms = 500".into(),
        "poll_wait_ms = 1000".into(),
        "[[peers]]".into(),
        format!("name = \"{pair}\""),
        format!("endpoint = \"{peer_url}\""),
    ]
}

fn worker<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .unwrap_or_else(|| panic!("no worker {name}: {status:#}"))
}

fn region_row<'a>(gw: &'a Value, name: &str) -> &'a Value {
    gw["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no region {name}: {gw:#}"))
}

/// Every `tandem_…` name in the dashboard is registered somewhere: by a region
/// (`tandem-server/src/metrics.rs`, prefixed `tandem_`), by the failover client
/// (`tandem-client/src/observe.rs`) or by the gateway.
fn assert_dashboard_uses_real_metrics(dashboard: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let region = read("crates/tandem-server/src/metrics.rs");
    let client = read("crates/tandem-client/src/observe.rs");
    let gateway =
        read("crates/tandem-gateway/src/routes.rs") + &read("crates/tandem-gateway/src/status.rs");
    let mut names: Vec<&str> = dashboard
        .match_indices("tandem_")
        .map(|(i, _)| {
            let rest = &dashboard[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() > 15, "{names:?}");
    for name in names {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        let quoted = |n: &str| format!("\"{n}\"");
        let known = region.contains(&quoted(base.trim_start_matches("tandem_")))
            || client.contains(&quoted(base))
            || gateway.contains(&quoted(base));
        assert!(
            known,
            "the dashboard uses {name}, which no Tandem process exports"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gateway_status_page_shows_a_killed_region_down_with_its_breaker_open() {
    // Checked first: with TANDEM_REQUIRE_CHROMIUM=1 a missing browser fails at once.
    let chromium = chromium();

    // Two paired regions, each reaching the other through a proxy (they listen on port 0).
    let secret = tempfile::tempdir().unwrap();
    let secret_file = secret.path().join("peer.secret");
    std::fs::write(
        &secret_file,
        "f0e1d2c3b4a5968778695a4b3c2d1e0f-status-federation\n",
    )
    .unwrap();
    let to_west = FaultProxy::start("127.0.0.1:9").await;
    let to_east = FaultProxy::start("127.0.0.1:9").await;
    let opts = |pair: &str, url: String| RegionOptions {
        extra_config: pair_config(pair, &url, &secret_file),
        ..RegionOptions::default()
    };
    let mut west =
        RegionProcess::start(Path::new(BIN), "westus", opts("eastus", to_east.url())).await;
    to_west.set_target(&west.url);
    let east = RegionProcess::start(Path::new(BIN), "eastus", opts("westus", to_west.url())).await;
    to_east.set_target(&east.url);

    // Each region's own view: health, the pair's link, the first backup (it runs at start),
    // asset counts and the workers.
    let west_json = format!("{}/status.json", west.url);
    let ws = until(&west_json, 60, "westus: caught up and backed up", |s| {
        s["replication"]["reachable"] == true
            && s["health"]["speaker"] == "serving"
            && s["backup"]["lastSuccess"].is_i64()
    })
    .await;
    assert_eq!(
        (ws["kind"].as_str(), ws["region"].as_str()),
        (Some("region"), Some("westus"))
    );
    assert_eq!(ws["health"]["status"], "ready", "{ws:#}");
    assert_eq!(ws["replication"]["pair"], "eastus");
    assert_eq!(ws["replication"]["behindChanges"], 0);
    assert!(ws["backup"]["lastSnapshot"].is_string(), "{ws:#}");
    assert!(ws["backup"]["lastSuccessAgeSecs"].as_i64().unwrap() >= 0);
    assert_eq!(ws["assets"]["resources"], 0, "no resource yet: {ws:#}");
    assert_eq!(ws["assets"]["kinds"]["model"], 0);
    for (name, state) in [
        ("engines", "idle"),
        ("replication", "idle"),
        ("job-resume", ""),
        ("log-retention", ""),
        ("backup", ""),
    ] {
        let w = worker(&ws, name);
        if !state.is_empty() {
            assert_eq!(w["state"], state, "{name}: {w}");
        }
    }
    assert!(worker(&ws, "backup")["runs"].as_u64().unwrap() >= 1);
    assert!(
        ws["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "speaker-serving"),
        "the catch-up at start is an event: {ws:#}"
    );
    let text = ws.to_string();
    for secret in [&west.admin_token, "f0e1d2c3b4a5968778695a4b3c2d1e0f"] {
        assert!(!text.contains(secret), "the status shows no secrets");
    }

    // Resources show in the counts (and in /metrics, under the same names the dashboard uses).
    let keys_west = west.create_resource("status");
    let keys_east = east.create_resource("status");
    let ws = get_json(&west_json).await;
    assert_eq!(ws["assets"]["resources"], 1, "{ws:#}");
    let metrics = http()
        .get(format!("{}/metrics", west.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "tandem_resources{region=\"westus\"} 1",
        "tandem_assets{kind=\"model\",region=\"westus\"} 0",
        "tandem_replication_pair_reachable{region=\"westus\"} 1",
        "tandem_speaker_state_changes_total{state=\"serving\",region=\"westus\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in\n{metrics}"
        );
    }
    for name in [
        "tandem_backup_last_success_timestamp_seconds",
        "tandem_replication_last_pull_timestamp_seconds",
        "tandem_replication_behind_changes",
    ] {
        assert!(metrics.contains(name), "no {name} in\n{metrics}");
    }
    let grafana = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/tandem.json"),
    )
    .unwrap();
    let _: Value = serde_json::from_str(&grafana).expect("the dashboard is JSON");
    assert_dashboard_uses_real_metrics(&grafana);

    // `tandem workers`: a table by default, JSON with --json.
    let out = Command::new(BIN)
        .args(["workers", "--endpoint", &west.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("region westus"), "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with("WORKER"),
        "{table}"
    );
    for name in [
        "backup",
        "replication",
        "job-resume",
        "log-retention",
        "engines",
    ] {
        assert!(
            table.lines().any(|l| l.starts_with(name)),
            "no {name} row in\n{table}"
        );
    }
    let out = Command::new(BIN)
        .args(["workers", "--json", "--endpoint", &west.url])
        .output()
        .unwrap();
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().len() >= 5, "{list:#}");

    // The gateway, westus first; one failure opens a breaker, and it stays open.
    let dir = tempfile::tempdir().unwrap();
    let regions = dir.path().join("regions.toml");
    std::fs::write(
        &regions,
        format!(
            "[[regions]]\nname = \"westus\"\nendpoint = \"{}\"\nkey = \"{}\"\n\
             [[regions]]\nname = \"eastus\"\nendpoint = \"{}\"\nkey = \"{}\"\n\
             [policy]\nbreaker_consecutive_failures = 1\nbreaker_open_base_ms = 600000\n\
             breaker_open_max_ms = 600000\nfailback_after_ms = 600000\nprobe_interval_ms = 100\n\
             tts_timeout_ms = 2000\nsts_timeout_ms = 2000\n",
            west.url, keys_west.key1, east.url, keys_east.key1
        ),
    )
    .unwrap();
    let gateway = GatewayProcess::start(Path::new(BIN), &regions);
    let gw_json = format!("{}/status.json", gateway.url);
    let gs = until(&gw_json, 30, "gateway: both regions reachable", |s| {
        s["regionStatus"]["westus"]["reachable"] == true
            && s["regionStatus"]["eastus"]["reachable"] == true
    })
    .await;
    assert_eq!(gs["kind"], "gateway");
    assert_eq!(region_row(&gs, "westus")["state"], "Closed");
    assert_eq!(region_row(&gs, "westus")["health"], "ready");
    // `/status` without Accept: text/html stays JSON, as before the page existed.
    let plain = get_json(&format!("{}/status", gateway.url)).await;
    assert_eq!(plain["regions"].as_array().unwrap().len(), 2);

    // kill -9 westus; calls through the gateway fail over to eastus and open westus' breaker.
    west.kill9();
    let voices = format!("{}/cognitiveservices/voices/list", gateway.url);
    let r = http().get(&voices).send().await.unwrap();
    assert_eq!(r.status(), 200, "the gateway fails over");
    assert_eq!(r.headers()["x-tandem-region"], "eastus");
    let gs = until(&gw_json, 30, "westus down, breaker open", |s| {
        region_row(s, "westus")["state"] == "Open"
            && s["regionStatus"]["westus"]["reachable"] == false
    })
    .await;
    assert_eq!(region_row(&gs, "westus")["health"], "unreachable");
    assert_eq!(region_row(&gs, "eastus")["state"], "Closed");
    assert_eq!(region_row(&gs, "eastus")["health"], "ready");
    let kinds: Vec<&str> = gs["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"failover") && kinds.contains(&"breaker-trip"),
        "{gs:#}"
    );
    // eastus notices its pair is gone.
    until(
        &format!("{}/status.json", east.url),
        30,
        "eastus: pair unreachable",
        |s| {
            s["replication"]["reachable"] == false
                && s["events"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["kind"] == "pair-unreachable")
        },
    )
    .await;
    let gm = http()
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "tandem_client_breaker_state{region=\"westus\"} 1",
        "tandem_client_breaker_state{region=\"eastus\"} 0",
        "tandem_gateway_region_status_reachable{region=\"westus\"} 0",
        "tandem_gateway_region_status_reachable{region=\"eastus\"} 1",
    ] {
        assert!(gm.lines().any(|l| l == line), "no {line:?} in\n{gm}");
    }

    // The page, in a real browser.
    let Some(chromium) = chromium else {
        return;
    };
    let page = format!("{}/status", gateway.url);
    let dom = browse(&chromium, &page, &["--dump-dom".into()]).await;
    assert!(
        dom.contains(r#"data-source="live""#),
        "the page's script fetched /status.json and rendered it: {dom}"
    );
    assert!(dom.contains(r#"data-kind="gateway""#), "{dom}");
    let row = |region: &str| {
        let start = dom
            .find(&format!(r#"<tr data-region="{region}""#))
            .unwrap_or_else(|| panic!("no row for {region} in {dom}"));
        let end = start + dom[start..].find("</tr>").unwrap();
        dom[start..end].to_owned()
    };
    let west_row = row("westus");
    assert!(
        west_row.contains(r#"data-breaker="open""#)
            && west_row.contains(r#"data-health="unreachable""#),
        "westus shows down with its breaker open: {west_row}"
    );
    assert!(west_row.contains(">unreachable</span>") && west_row.contains(">open</span>"));
    let east_row = row("eastus");
    assert!(
        east_row.contains(r#"data-breaker="closed""#)
            && east_row.contains(r#"data-health="ready""#),
        "{east_row}"
    );
    assert!(
        dom.contains(r#"data-event="failover""#),
        "the failover is listed: {dom}"
    );
    assert!(
        dom.contains(r#"data-panel="unreachable" data-region="westus""#),
        "westus' own status is missing, and the page says so: {dom}"
    );
    assert!(
        dom.contains(r#"data-panel="replication" data-region="eastus""#),
        "eastus' own status is shown: {dom}"
    );
    assert!(
        !dom.contains(&keys_west.key1) && !dom.contains(&keys_east.key1),
        "no keys on the page"
    );

    let shot = artifact_dir().join("gateway-westus-down.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chromium,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,900".into(),
        ],
    )
    .await;
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    println!("status page screenshot: {}", shot.display());

    // A region's own page renders the same way.
    let dom = browse(
        &chromium,
        &format!("{}/status", east.url),
        &["--dump-dom".into()],
    )
    .await;
    assert!(
        dom.contains(r#"data-source="live""#) && dom.contains(r#"data-kind="region""#),
        "{dom}"
    );
    assert!(dom.contains(r#"data-event="pair-unreachable""#), "{dom}");
    assert!(dom.contains(r#"data-worker="backup""#), "{dom}");
    let shot = artifact_dir().join("region-eastus-pair-down.png");
    browse(
        &chromium,
        &format!("{}/status", east.url),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1200,900".into(),
        ],
    )
    .await;
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
    println!("region status page screenshot: {}", shot.display());
}
