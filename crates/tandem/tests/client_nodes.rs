//! A region served by two nodes, through the real client (issue #10): westus is two
//! `tandem serve` processes sharing one store (STS secret and resources), configured as
//! `endpoints = [A, B]`; eastus is the failover target. The scenario runs on both storage
//! layouts (`tandem_testkit::on_each_backend!`): `…::sqlite`, one data directory, and
//! `…::postgres_s3`, a fresh PostgreSQL database and S3 prefix (skipped without the servers
//! unless `TANDEM_REQUIRE_PG=1` / `TANDEM_REQUIRE_S3=1`).
//!
//! A stream of text-to-speech calls is balanced over A and B. kill -9 of node A in the middle
//! of it fails no call and fails nothing over: every answer still comes from westus, node A is
//! ejected. Node A, restarted on the same address, passes its readiness probe, is re-admitted
//! and serves again.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use tandem_client::{
    Answered, ClientConfig, ClientEvent, SynthesisRequest, Synthesized, TandemClient,
};
use tandem_testkit::{on_each_backend, SharedStorage};
use tokio::sync::broadcast::Receiver;

/// A node of an existing region on a fixed address, so that it can be killed and restarted
/// where the client's configuration names it: the first node's config file with another
/// `listen` and a `node_name`, sharing its data directory (or database and bucket), STS secret
/// and admin token.
struct FixedNode {
    dir: tempfile::TempDir,
    url: String,
    child: Option<Child>,
}

impl FixedNode {
    async fn start(first: &RegionProcess, name: &str) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let config = std::fs::read_to_string(first.config_path()).expect("first node's config");
        assert!(config.contains("listen = \"127.0.0.1:0\""), "{config}");
        let config = config.replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\"\nnode_name = \"{name}\""),
        );
        let dir = tempfile::Builder::new()
            .prefix("tandem-node-")
            .tempdir()
            .expect("tempdir");
        std::fs::write(dir.path().join("region.toml"), config).expect("config");
        let mut node = FixedNode {
            dir,
            url: format!("http://127.0.0.1:{port}"),
            child: None,
        };
        node.spawn().await;
        node
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("region.toml")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stderr.log"))
            .expect("log file");
        let child = Command::new(Path::new(BIN))
            .arg("serve")
            .arg("--config")
            .arg(self.config_path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start tandem serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        let http = reqwest::Client::new();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("node exited while starting: {status}\n{}", self.log());
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.url)).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "node not ready\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            c.wait().expect("reap");
        }
    }
}

impl Drop for FixedNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn tts_request() -> SynthesisRequest {
    SynthesisRequest {
        ssml: ssml("en-US-SltFlite", "Two nodes, one region."),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: false,
    }
}

async fn tts(client: &TandemClient) -> Answered<Synthesized> {
    let a = client
        .synthesize(&tts_request())
        .await
        .unwrap_or_else(|e| panic!("a call failed: {e}"));
    assert!(a.value.audio.starts_with(b"RIFF"));
    a
}

fn drain(rx: &mut Receiver<ClientEvent>, into: &mut Vec<ClientEvent>) {
    while let Ok(e) = rx.try_recv() {
        into.push(e);
    }
}

on_each_backend!(dead_node_ejected => a_dead_node_is_ejected_without_a_failed_call_or_a_failover_and_comes_back);

async fn a_dead_node_is_ejected_without_a_failed_call_or_a_failover_and_comes_back(
    storage: SharedStorage,
) {
    eprintln!("storage: {}", storage.label());
    let lines = storage.config_lines();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let node_b = region_with("westus", &lines).await;
    let west = node_b.create_resource("nodes");
    let mut node_a = FixedNode::start(&node_b, "a").await;
    let east = region("eastus").await;
    let east_key = east.create_resource("nodes");
    let (a, b) = (node_a.url.clone(), node_b.url.clone());
    let cfg = ClientConfig::from_toml(&format!(
        r#"
        [[regions]]
        name = "westus"
        endpoints = ["{a}", "{b}"]
        key = "{}"

        [[regions]]
        name = "eastus"
        endpoint = "{}"
        key = "{}"

        [policy]
        probe_interval_ms = 100
        breaker_open_base_ms = 200
        breaker_open_max_ms = 1000
        discovery = false
        "#,
        west.key1, east.url, east_key.key1
    ))
    .unwrap();
    let client = TandemClient::new(cfg).unwrap();
    let mut rx = client.subscribe();
    let mut events = Vec::new();

    // Balanced: both nodes answer, with one token of the region.
    let mut by_node = Vec::new();
    for _ in 0..6 {
        let answered = tts(&client).await;
        assert_eq!(
            (answered.region.as_str(), answered.failovers),
            ("westus", 0)
        );
        by_node.push(answered.node);
    }
    assert_eq!(
        by_node.iter().filter(|n| **n == a).count(),
        3,
        "{by_node:?}"
    );
    assert_eq!(
        by_node.iter().filter(|n| **n == b).count(),
        3,
        "{by_node:?}"
    );

    // A stream of calls from two tasks; node A is killed while it runs.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (client, stop, done) = (client.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r = client.synthesize(&tts_request()).await;
                answers.push((Instant::now(), r.map_err(|e| e.to_string())));
                done.fetch_add(1, Ordering::SeqCst);
            }
            answers
        }));
    }
    while done.load(Ordering::SeqCst) < 6 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node_a.kill9();
    let killed = Instant::now();
    let after_kill = done.load(Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(120);
    while done.load(Ordering::SeqCst) < after_kill + 30 {
        assert!(Instant::now() < deadline, "the stream stalled");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut answers = Vec::new();
    for t in tasks {
        answers.extend(t.await.unwrap());
    }
    let failed: Vec<_> = answers.iter().filter(|(_, r)| r.is_err()).collect();
    assert!(failed.is_empty(), "failed calls: {failed:?}");
    for (at, r) in &answers {
        let answered = r.as_ref().unwrap();
        assert_eq!(answered.region, "westus", "no region failover");
        assert_eq!(answered.failovers, 0);
        if *at > killed + Duration::from_millis(50) {
            assert_eq!(answered.node, b, "only node B answers once A is dead");
        }
    }
    drain(&mut rx, &mut events);
    assert!(
        events.iter().any(
            |e| matches!(e, ClientEvent::NodeEjected { region, node, .. }
            if region == "westus" && *node == a)
        ),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ClientEvent::NodeRetry { from, to, .. }
            if *from == a && *to == b)),
        "calls that met the dead node went on to node B: {events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::Failover { .. } | ClientEvent::Trip { .. })),
        "{events:?}"
    );
    let status = client.status();
    assert_eq!(status[0].consecutive_failures, 0, "{status:?}");
    assert!(!status[0].nodes[0].in_rotation, "{status:?}");
    assert!(status[0].nodes[1].in_rotation, "{status:?}");
    let metrics = client.render_metrics();
    assert!(
        metrics.contains(&format!(
            "tandem_client_node_ejected{{node=\"{a}\",region=\"westus\"}} 1"
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("tandem_client_failovers_total 0"),
        "{metrics}"
    );

    // Node A comes back on its address: its readiness probe re-admits it, and it serves.
    node_a.spawn().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        drain(&mut rx, &mut events);
        if events
            .iter()
            .any(|e| matches!(e, ClientEvent::NodeReadmitted { node, .. } if *node == a))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node A never re-admitted: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut by_node = Vec::new();
    for _ in 0..6 {
        let answered = tts(&client).await;
        assert_eq!(
            (answered.region.as_str(), answered.failovers),
            ("westus", 0)
        );
        by_node.push(answered.node);
    }
    assert!(
        by_node.iter().filter(|n| **n == a).count() >= 2,
        "{by_node:?}"
    );
    assert!(client.status()[0].nodes[0].in_rotation);
    drain(&mut rx, &mut events);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, ClientEvent::Failover { .. })),
        "{events:?}"
    );
}
