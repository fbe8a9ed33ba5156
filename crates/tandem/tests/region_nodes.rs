//! Two nodes of one region (issue #10): two `tandem serve` processes sharing the region's
//! metadata and blobs, STS secret and resources. Every scenario runs twice
//! (`tandem_testkit::on_each_backend!`): `…::sqlite`, both nodes on one data directory (one
//! SQLite file, one blob directory), and `…::postgres_s3`, both nodes on a fresh PostgreSQL
//! database and a fresh S3 prefix of their own (`scripts/pg-server.sh run scripts/s3-server.sh
//! run cargo test -p tandem --test region_nodes`; skipped without the servers unless
//! `TANDEM_REQUIRE_PG=1` / `TANDEM_REQUIRE_S3=1`).
//!
//! - A token issued by one node is accepted by the other, and either node serves any request.
//! - A training job runs on exactly one node: the node that took the request trains, and the
//!   other, whose periodic scan sees the job unfinished, leaves it to the lease holder.
//! - kill -9 of the node in the middle of a training: once its job lease lapses
//!   (`job_lease_secs`, 2 s here), the other node takes the job over and finishes it; the
//!   model is then served by the survivor.
//! - A region-wide quota, the backup leader and its takeover, `tandem migrate`.
//! - Speaker replication with the pair runs on the holder of the region's replication lease
//!   only; when that node dies, the other takes the lease over and replication goes on.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};
use tandem_testkit::{on_each_backend, SharedStorage};

/// `lines` as the `&str`s `start_sibling` takes.
fn refs(lines: &[String]) -> Vec<&str> {
    lines.iter().map(String::as_str).collect()
}

/// Node `name` of a region on `storage`, with 2 s job leases.
fn node(storage: &SharedStorage, name: &str) -> Vec<String> {
    storage.with(&[&format!("node_name = \"{name}\""), "job_lease_secs = 2"])
}

/// The region's metadata store, opened by the test (blobs in a directory of its own: the
/// test reads leases only).
async fn open_store(
    storage: &SharedStorage,
    region: &RegionProcess,
    blobs: &Path,
) -> tandem_store::Store {
    tandem_store::Store::open(
        &storage.metadata_url(region),
        &format!("file://{}", blobs.display()),
    )
    .await
    .unwrap()
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

on_each_backend!(dead_nodes_training_is_taken_over => two_nodes_share_a_region_and_a_dead_nodes_training_is_taken_over);

async fn two_nodes_share_a_region_and_a_dead_nodes_training_is_taken_over(storage: SharedStorage) {
    eprintln!("storage: {}", storage.label());
    let mut a = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: node(&storage, "node-a"),
            ..RegionOptions::default()
        },
    )
    .await;
    let b = a.start_sibling(&refs(&node(&storage, "node-b"))).await;
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
    let scratch = tempfile::tempdir().unwrap();
    let store = open_store(&storage, &a, scratch.path()).await;
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

on_each_backend!(quota_holds_across_nodes => a_quota_holds_across_the_nodes_of_a_region);

/// `quota_scope = "region"`: a resource's concurrency limit holds across the nodes of the
/// region. Limit 2, three recognitions at once (two on node A, one on node B, each holding its
/// slot for the seconds recognition takes): exactly one 429. Counted per node, all three
/// would pass (node A holds two, node B one).
async fn a_quota_holds_across_the_nodes_of_a_region(storage: SharedStorage) {
    let quota = |name: &str| {
        storage.with(&[
            &format!("node_name = \"{name}\""),
            "quota_scope = \"region\"",
        ])
    };
    let a = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: quota("node-a"),
            ..RegionOptions::default()
        },
    )
    .await;
    let b = a.start_sibling(&refs(&quota("node-b"))).await;
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

on_each_backend!(backup_leader_takeover => one_node_backs_up_the_region_and_another_takes_over);

/// Both nodes run the backup worker (every second here), but one backs up: the holder of the
/// region's backup lease. When it dies, the other takes over once the lease lapses (two
/// intervals).
async fn one_node_backs_up_the_region_and_another_takes_over(storage: SharedStorage) {
    let repo = tempfile::tempdir().unwrap();
    let backup = |node: &str| {
        storage.with(&[
            &format!("node_name = \"{node}\""),
            "[backup]",
            &format!("target = \"file://{}\"", repo.path().display()),
            "interval_secs = 1",
        ])
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
    let b = a.start_sibling(&refs(&backup("node-b"))).await;
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

on_each_backend!(migrate_before_start => without_migrate_on_start_a_node_waits_for_tandem_migrate);

/// `[storage] migrate_on_start = false` (nodes sharing a database): a process refuses a
/// database behind its format and says to run `tandem migrate`; after it, the same command
/// works. `tandem migrate` says what it did, and is idempotent.
async fn without_migrate_on_start_a_node_waits_for_tandem_migrate(storage: SharedStorage) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("region.toml");
    let mut lines = storage.config_lines();
    if lines.is_empty() {
        lines.push("[storage]".into());
    }
    lines.push("migrate_on_start = false".into());
    std::fs::write(
        &config,
        format!(
            "region = \"westus\"\ndata_dir = \"{}\"\n{}\n",
            dir.path().join("data").display(),
            lines.join("\n")
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

const V: &str = "api-version=2021-09-05";

/// `GET /admin/v1/replication` of one node: state, cursor, lease, digest of the speaker data.
async fn replication(node: &RegionProcess) -> Value {
    let resp = http()
        .get(format!("{}/admin/v1/replication", node.url))
        .bearer_auth(&node.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Polls `node`'s replication status every 50 ms until `cond` holds, or panics after 60 s.
async fn until_status(what: &str, node: &RegionProcess, cond: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let v = replication(node).await;
        if cond(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `a` and `b` hold the same speaker data (their digests agree).
async fn converged(what: &str, a: &RegionProcess, b: &RegionProcess) {
    let start = Instant::now();
    loop {
        let (da, db) = (
            replication(a).await["digest"].clone(),
            replication(b).await["digest"].clone(),
        );
        if da == db {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: never converged:\n{da}\n{db}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new text-independent verification profile at `base`, enrolled once with flite's voice
/// saying `text` (synthesized there); returns its id.
async fn enrolled_profile(base: &str, key: &str, text: &str) -> String {
    let http = http();
    let wav = http
        .post(format!("{base}/cognitiveservices/v1"))
        .header(KEY, key)
        .header("Content-Type", "application/ssml+xml")
        .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
        .body(ssml("en-US-SltFlite", text))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let profiles = format!("{base}/speaker-recognition/verification/text-independent/profiles");
    let r = http
        .post(format!("{profiles}?{V}"))
        .header(KEY, key)
        .json(&json!({"locale": "en-us"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["profileId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = http
        .post(format!("{profiles}/{id}/enrollments?{V}"))
        .header(KEY, key)
        .header("Content-Type", "audio/wav")
        .body(wav)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "enroll: {}", r.status());
    id
}

/// Waits for `/readyz/speaker` (the node caught up with the pair).
async fn speaker_ready(node: &RegionProcess) {
    let start = Instant::now();
    while http()
        .get(format!("{}/readyz/speaker", node.url))
        .send()
        .await
        .map_or(true, |r| r.status() != 200)
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}: speaker never ready",
            node.url
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_each_backend!(replication_lease_takeover => one_node_replicates_the_region_and_another_takes_over);

/// westus (two nodes) is paired with eastus (one node, SQLite). Both westus nodes run the
/// follower, but only the holder of `replication/speaker/westus` pulls eastus's log and
/// applies it; the other applies nothing. kill -9 of the holder: once its lease lapses (2 s),
/// the other takes it over (generation 2), and enrollments in eastus keep reaching westus.
/// eastus reaches westus through a proxy, the region's load balancer, which moves to the
/// survivor: enrollments in westus keep reaching eastus too.
async fn one_node_replicates_the_region_and_another_takes_over(storage: SharedStorage) {
    let secret = tempfile::tempdir().unwrap();
    let secret_file = secret.path().join("peer.secret");
    std::fs::write(
        &secret_file,
        "f0e1d2c3b4a5968778695a4b3c2d1e0f-test-federation\n",
    )
    .unwrap();
    let paired = |pair: &str, endpoint: &str| {
        vec![
            format!("pair = \"{pair}\""),
            format!("peer_secret_file = \"{}\"", secret_file.display()),
            "[replication]".into(),
            "retry_base_ms = 50".into(),
            "retry_max_ms = 500".into(),
            "poll_wait_ms = 2000".into(),
            "[[peers]]".into(),
            format!("name = \"{pair}\""),
            format!("endpoint = \"{endpoint}\""),
        ]
    };
    let balancer = tandem_testkit::FaultProxy::start("127.0.0.1:9").await;
    let east = RegionProcess::start(
        Path::new(BIN),
        "eastus",
        RegionOptions {
            extra_config: paired("westus", &balancer.url()),
            ..RegionOptions::default()
        },
    )
    .await;
    let west_node = |name: &str| {
        let mut lines = vec![
            format!("node_name = \"{name}\""),
            "job_lease_secs = 2".into(),
        ];
        lines.extend(paired("eastus", &east.url));
        storage.with(&refs(&lines))
    };
    let a = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: west_node("node-a"),
            ..RegionOptions::default()
        },
    )
    .await;
    balancer.set_target(&a.url);
    let b = a.start_sibling(&refs(&west_node("node-b"))).await;
    for node in [&east, &a, &b] {
        speaker_ready(node).await;
    }
    let east_key = east.create_resource("east").key1;
    let west_key = a.create_resource("west").key1;

    // One node holds the region's replication lease; the admin view of each node says which.
    let scratch = tempfile::tempdir().unwrap();
    let store = open_store(&storage, &a, scratch.path()).await;
    let job = tandem_server::replication::replication_lease_job(
        &tandem_core::RegionName::new("westus").unwrap(),
    );
    let lease = store.meta.get_lease(&job).await.unwrap().expect("a lease");
    assert_eq!(lease.generation, 1);
    let (mut holder, survivor, survivor_name) = if lease.holder == "node-a" {
        (a, b, "node-b")
    } else {
        assert_eq!(lease.holder, "node-b");
        (b, a, "node-a")
    };
    assert_eq!(replication(&holder).await["leader"], true);
    assert_eq!(replication(&survivor).await["leader"], false);

    // An enrollment in eastus reaches westus, applied by the holder alone.
    enrolled_profile(
        &east.url,
        &east_key,
        "The birch canoe slid on the smooth planks.",
    )
    .await;
    converged("eastus -> westus", &east, &survivor).await;
    let applied = |v: &Value| v["appliedTotal"].as_u64().unwrap();
    assert!(
        applied(&replication(&holder).await) >= 2,
        "the holder applied it"
    );
    assert_eq!(
        applied(&replication(&survivor).await),
        0,
        "the other node applied nothing"
    );

    // kill -9 of the holder; the balancer in front of westus moves to the survivor.
    holder.kill9();
    balancer.set_target(&survivor.url);
    until_status("the survivor to take the lease", &survivor, |v| {
        v["leader"] == true
    })
    .await;
    let lease = store.meta.get_lease(&job).await.unwrap().expect("a lease");
    assert_eq!(
        (lease.holder.as_str(), lease.generation),
        (survivor_name, 2)
    );
    assert!(
        survivor
            .log()
            .contains("replication lease taken over from another node"),
        "the survivor says it took over"
    );

    // Both directions still replicate.
    enrolled_profile(
        &east.url,
        &east_key,
        "Glue the sheet to the dark blue background.",
    )
    .await;
    converged("eastus -> westus after the kill", &east, &survivor).await;
    assert!(applied(&replication(&survivor).await) >= 2);
    enrolled_profile(
        &survivor.url,
        &west_key,
        "It is easy to tell the depth of a well.",
    )
    .await;
    converged("westus -> eastus after the kill", &east, &survivor).await;
    drop(holder);
}
