//! Two nodes of one region (issue #10): two `tandem serve` processes sharing the region's data
//! directory (one SQLite database, one blob store), STS secret and resources.
//!
//! - A token issued by one node is accepted by the other, and either node serves any request.
//! - A training job runs on exactly one node: the node that took the request trains, and the
//!   other, whose periodic scan sees the job unfinished, leaves it to the lease holder.
//! - kill -9 of the node in the middle of a training: once its job lease lapses
//!   (`job_lease_secs`, 2 s here), the other node takes the job over and finishes it; the
//!   model is then served by the survivor.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};

fn node(name: &str) -> Vec<String> {
    vec![
        format!("node_name = \"{name}\""),
        "job_lease_secs = 2".into(),
    ]
}

/// A Language dataset of `bytes` of pseudo-random sentences over the biology vocabulary
/// (seeded): large enough that training it takes seconds in a debug build.
fn corpus(bytes: usize) -> Vec<u8> {
    let text =
        std::fs::read_to_string(shared_data().join("custom-speech-biology/language-data.txt"))
            .unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut out = String::with_capacity(bytes + 100);
    while out.len() < bytes {
        let n = 6 + (x % 10) as usize;
        for i in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i > 0 {
                out.push(' ');
            }
            out.push_str(words[(x % words.len() as u64) as usize]);
        }
        out.push('\n');
    }
    out.into_bytes()
}

async fn create_model(api: &Api, language: &Value, name: &str) -> String {
    let resp = api
        .post(
            "/models",
            json!({"datasets": [{"self": language["self"]}], "locale": "en-US",
                   "displayName": name}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let model: Value = resp.json().await.unwrap();
    model["self"].as_str().unwrap().to_owned()
}

fn id_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

/// How many times `node`'s log says it finished training `model`.
fn trainings(node: &RegionProcess, model: &str) -> usize {
    node.log()
        .lines()
        .filter(|l| l.contains("custom model training finished") && l.contains(model))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_a_region_and_a_dead_nodes_training_is_taken_over() {
    let mut a = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: node("node-a"),
            ..RegionOptions::default()
        },
    )
    .await;
    let b = a
        .start_sibling(&["node_name = \"node-b\"", "job_lease_secs = 2"])
        .await;
    let keys = a.create_resource("nodes");

    // A token from node A works on node B.
    let http = http();
    let token = http
        .post(format!("{}/sts/v1.0/issueToken", a.url))
        .header(KEY, &keys.key1)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .get(format!("{}/cognitiveservices/voices/list", b.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a token from node A is valid on node B");

    // 1. No kill: the node that took the request trains; the other never does.
    let api_a = Api::new(&a, &keys.key1);
    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let small = api_a.upload("Language", "biology text", text).await;
    let quick = create_model(&api_a, &small, "quick").await;
    api_a.wait(&quick, Duration::from_secs(120)).await;
    let api_b = Api::new(&b, &keys.key1);
    let seen: Value = api_b.get(&quick).await.json().await.unwrap();
    assert_eq!(
        seen["status"], "Succeeded",
        "node B serves what node A made"
    );
    assert_eq!(trainings(&a, id_of(&quick)), 1, "node A trained it once");
    assert_eq!(trainings(&b, id_of(&quick)), 0, "node B never trained it");

    // 2. kill -9 of node A in the middle of a training: node B finishes it.
    let big = api_a
        .upload("Language", "large corpus", corpus(3_000_000))
        .await;
    let slow = create_model(&api_a, &big, "slow").await;
    let slow_on_b = format!("{}/models/{}", api_b.base, id_of(&slow));
    let started = Instant::now();
    loop {
        let m: Value = api_a.get(&slow).await.json().await.unwrap();
        match m["status"].as_str().unwrap() {
            "Running" => break,
            "NotStarted" => tokio::time::sleep(Duration::from_millis(20)).await,
            other => {
                panic!("the slow model finished before the kill ({other}): use a larger corpus")
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    // While node A trains, it holds the job's lease: node B's scans (every 2 s) leave the job
    // alone. The lease is read from the shared database.
    let store = tandem_store::Store::open(
        &format!("sqlite://{}", a.data_dir().join("tandem.db").display()),
        &format!("file://{}", a.data_dir().join("blobs").display()),
    )
    .await
    .unwrap();
    let job = format!("train/{}/{}", keys.id, id_of(&slow));
    let lease = store
        .meta
        .get_lease(&job)
        .await
        .unwrap()
        .expect("a lease while training");
    assert_eq!((lease.holder.as_str(), lease.generation), ("node-a", 1));
    a.kill9();
    let killed_at = Instant::now();
    let done = api_b.wait(&slow_on_b, Duration::from_secs(300)).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    let took = killed_at.elapsed();
    assert_eq!(
        trainings(&a, id_of(&slow)),
        0,
        "node A died before finishing"
    );
    assert_eq!(trainings(&b, id_of(&slow)), 1, "node B finished it, once");
    assert!(
        b.log().contains("job taken over from another node"),
        "node B says it took the job over (lease generation 2)"
    );
    assert_eq!(
        store.meta.get_lease(&job).await.unwrap(),
        None,
        "released once done"
    );
    eprintln!(
        "training taken over and finished {:.1} s after the kill",
        took.as_secs_f64()
    );

    // The model the survivor trained deploys and recognizes there.
    let resp = api_b
        .post(
            "/endpoints",
            json!({"model": {"self": slow_on_b}, "locale": "en-US", "displayName": "slow"}),
        )
        .await;
    assert_eq!(
        resp.status().as_u16(),
        201,
        "{}",
        resp.text().await.unwrap()
    );
}

/// `quota_scope = "region"`: a resource's concurrency limit holds across the nodes of the
/// region. Limit 2, three recognitions at once (two on node A, one on node B, each holding its
/// slot for the seconds recognition takes): exactly one 429. Counted per node, all three
/// would pass (node A holds two, node B one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_holds_across_the_nodes_of_a_region() {
    let a = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: vec![
                "node_name = \"node-a\"".into(),
                "quota_scope = \"region\"".into(),
            ],
            ..RegionOptions::default()
        },
    )
    .await;
    let b = a
        .start_sibling(&["node_name = \"node-b\"", "quota_scope = \"region\""])
        .await;
    let out = a.cli(&[
        "resource",
        "create",
        "--name",
        "quota",
        "--concurrency",
        "2",
        "--json",
    ]);
    let created: Value = serde_json::from_str(out.trim()).unwrap();
    let key = created["key1"].as_str().unwrap().to_owned();
    let longest = biology()
        .into_iter()
        .max_by_key(|c| std::fs::metadata(&c.path).unwrap().len())
        .unwrap();
    let clip = wav_bytes(&longest.path);
    let http = http();
    let calls = [&a.url, &a.url, &b.url].map(|base| {
        let (http, key, clip) = (http.clone(), key.clone(), clip.clone());
        let url = stt_url(base, "language=en-US");
        async move {
            http.post(url)
                .header(KEY, key)
                .header("Content-Type", "audio/wav")
                .body(clip)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let mut codes = futures::future::join_all(calls).await;
    codes.sort();
    assert_eq!(codes, [200, 200, 429], "limit 2 across both nodes");
    // The slots were freed: two more calls pass, one on each node.
    for base in [&a.url, &b.url] {
        let r = http
            .post(stt_url(base, "language=en-US"))
            .header(KEY, &key)
            .header("Content-Type", "audio/wav")
            .body(clip.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
}

/// Count of `backup` lines (one per snapshot the worker took) in a node's log.
fn backups(node: &RegionProcess) -> usize {
    node.log()
        .lines()
        .filter(|l| l.contains("took_ms=") && l.contains(" backup"))
        .count()
}

/// Polls `cond` every 100 ms until it holds, or panics with `what` after `limit`.
async fn until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both nodes run the backup worker (every second here), but one backs up: the holder of the
/// region's backup lease. When it dies, the other takes over once the lease lapses (two
/// intervals).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_backs_up_the_region_and_another_takes_over() {
    let repo = tempfile::tempdir().unwrap();
    let backup = |node: &str| {
        vec![
            format!("node_name = \"{node}\""),
            "[backup]".to_owned(),
            format!("target = \"file://{}\"", repo.path().display()),
            "interval_secs = 1".to_owned(),
        ]
    };
    let mut a = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: backup("node-a"),
            ..RegionOptions::default()
        },
    )
    .await;
    let lines = backup("node-b");
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let b = a.start_sibling(&refs).await;
    a.create_resource("backed-up");
    until("three snapshots", Duration::from_secs(60), || {
        backups(&a) + backups(&b) >= 3
    })
    .await;
    // Node A started first, so its worker's first tick took the lease.
    assert!(backups(&a) >= 3, "node A backs up");
    assert_eq!(backups(&b), 0, "only the lease holder backs up");
    a.kill9();
    until(
        "node B to take over backups",
        Duration::from_secs(60),
        || backups(&b) >= 2,
    )
    .await;
}

/// `[storage] migrate_on_start = false` (nodes sharing a database): a process refuses a
/// database behind its format and says to run `tandem migrate`; after it, the same command
/// works. `tandem migrate` says what it did, and is idempotent.
#[test]
fn without_migrate_on_start_a_node_waits_for_tandem_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("region.toml");
    std::fs::write(
        &config,
        format!(
            "region = \"westus\"\ndata_dir = \"{}\"\n[storage]\nmigrate_on_start = false\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let tandem = |args: &[&str]| {
        let out = std::process::Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = tandem(&["resource", "list"]);
    assert!(!ok, "a database behind the build's format is refused");
    assert!(err.contains("tandem migrate"), "{err}");
    let (ok, out, err) = tandem(&["migrate", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["before"], 0);
    let format = v["after"].as_u64().unwrap();
    assert!(format >= 8, "{v}");
    let (ok, out, _) = tandem(&["migrate"]);
    assert!(ok);
    assert!(out.contains("nothing to do"), "{out}");
    let (ok, _, err) = tandem(&["resource", "list"]);
    assert!(ok, "after tandem migrate: {err}");
}
