//! Backups through real region processes and the real `tandem` CLI (issue #5): the biology
//! region (audio and language datasets, a trained model, an evaluation, an endpoint with logs,
//! a speaker profile with an enrollment) is backed up, verified, and restored
//!
//! - into an empty `westus`: every blob's sha256 and every metadata row match the source, the
//!   same keys work and the endpoint recognizes as before;
//! - into `eastus`: asset ids are kept, new keys are printed, the old keys are refused there;
//!
//! and a damaged repository (one flipped byte in a chunk, a truncated manifest) is named by
//! `verify --read-data` and refused by `restore`, which then writes nothing. The backup worker
//! of `tandem serve` takes a snapshot that holds an acknowledged write without being asked.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::backup::*;
use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};
use tandem_store::Store;

/// The chunk files of a `file://` repository.
fn chunk_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for d in std::fs::read_dir(repo.join("chunks")).unwrap().flatten() {
        for f in std::fs::read_dir(d.path()).unwrap().flatten() {
            out.push(f.path());
        }
    }
    out.sort();
    out
}

struct Biology {
    key: String,
    model: String,
    endpoint: String,
    profile: String,
    transcript: Value,
    clip: Vec<u8>,
}

/// Fills `region` with the biology assets of every kind.
async fn populate(region: &RegionProcess) -> Biology {
    let keys = region.create_resource("biology");
    let api = Api::new(region, &keys.key1);
    let audio = api
        .upload("Acoustic", "biology audio", acoustic_zip(50))
        .await;
    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let language = api.upload("Language", "biology text", text).await;
    let resp = api
        .post(
            "/models",
            json!({"datasets": [{"self": language["self"]}], "locale": "en-US",
                   "displayName": "biology"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let model: Value = resp.json().await.unwrap();
    let model_self = model["self"].as_str().unwrap().to_owned();
    api.wait(&model_self, Duration::from_secs(120)).await;
    let test = api
        .upload("Acoustic", "biology test", acoustic_zip(2))
        .await;
    let resp = api
        .post(
            "/evaluations",
            json!({"model1": {"self": model_self}, "model2": {"self": model_self},
                   "dataset": {"self": test["self"]}, "locale": "en-US",
                   "displayName": "biology evaluation"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let evaluation: Value = resp.json().await.unwrap();
    api.wait(
        evaluation["self"].as_str().unwrap(),
        Duration::from_secs(300),
    )
    .await;
    let resp = api
        .post(
            "/endpoints",
            json!({"model": {"self": model_self}, "locale": "en-US", "displayName": "biology",
                   "properties": {"loggingEnabled": true}}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let endpoint: Value = resp.json().await.unwrap();
    let endpoint = endpoint["self"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let clip = wav_bytes(&biology()[0].path);
    let (s, transcript) = api
        .recognize(
            &region.url,
            &format!("language=en-US&cid={endpoint}"),
            clip.clone(),
        )
        .await;
    assert_eq!(s, 200, "{transcript}");
    assert!(audio["self"].is_string());

    // A speaker profile with one enrollment (audio kept as a blob).
    let http = http();
    let profiles = format!(
        "{}/speaker-recognition/verification/text-independent/profiles",
        region.url
    );
    let r = http
        .post(format!("{profiles}?api-version=2021-09-05"))
        .header(KEY, &keys.key1)
        .json(&json!({"locale": "en-us"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let profile: Value = r.json().await.unwrap();
    let profile = profile["profileId"].as_str().unwrap().to_owned();
    let longest = biology()
        .into_iter()
        .max_by_key(|c| std::fs::metadata(&c.path).unwrap().len())
        .unwrap();
    let r = http
        .post(format!(
            "{profiles}/{profile}/enrollments?api-version=2021-09-05"
        ))
        .header(KEY, &keys.key1)
        .header("Content-Type", "audio/wav; codecs=audio/pcm")
        .body(wav_bytes(&longest.path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    Biology {
        key: keys.key1,
        model: model_self.rsplit('/').next().unwrap().to_owned(),
        endpoint,
        profile,
        transcript: transcript["DisplayText"].clone(),
        clip,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_biology_region_round_trips_and_damage_is_refused() {
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("westus");
    let west = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: manual(&repo),
            ..RegionOptions::default()
        },
    )
    .await;
    let bio = populate(&west).await;

    let first = cli_json(&west, &["backup", "run", "--json"]);
    let snapshot = first["snapshot"].as_str().unwrap().to_owned();
    assert!(first["files"].as_u64().unwrap() >= 50, "{first}");
    // Unchanged: the second backup stores no new chunk.
    let again = cli_json(&west, &["backup", "run", "--json"]);
    assert_eq!(again["new_chunks"], 0, "{again}");
    assert_eq!(again["bytes"], first["bytes"]);
    let list = cli_json(&west, &["backup", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["id"], snapshot.as_str(), "oldest first");
    let verify = cli_json(&west, &["backup", "verify", "--read-data", "--json"]);
    assert_eq!(verify["ok"], true, "{verify}");

    // Same region, empty store: byte-identical blobs and metadata, the same keys.
    let mut same = empty_region("westus", &repo).await;
    let out = cli_json(&same, &["restore", "--snapshot", &snapshot, "--json"]);
    assert_eq!(out["source_region"], "westus");
    assert!(out["new_keys"].as_array().unwrap().is_empty(), "{out}");
    assert_eq!(blob_hashes(&west.data_dir()), blob_hashes(&same.data_dir()));
    assert_eq!(
        export(&west.data_dir()).await,
        export(&same.data_dir()).await,
        "every metadata row matches"
    );
    // Restoring again onto it (now holding data) is refused and changes nothing.
    let (ok, _, err) = cli(&same, &["restore", "--snapshot", &snapshot]);
    assert!(!ok);
    assert!(err.contains("already holds data"), "{err}");
    same.restart().await;
    let api = Api::new(&same, &bio.key);
    let model: Value = api
        .get(&format!("{}/models/{}", api.base, bio.model))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(model["status"], "Succeeded", "{model}");
    let (s, v) = api
        .recognize(
            &same.url,
            &format!("language=en-US&cid={}", bio.endpoint),
            bio.clip.clone(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["DisplayText"], bio.transcript);
    drop(same);

    // Another region: the same ids, new keys; the old key is refused there.
    let mut east = empty_region("eastus", &repo).await;
    let out = cli_json(&east, &["restore", "--snapshot", "latest", "--json"]);
    let keys = out["new_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{out}");
    let new_key = keys[0]["key1"].as_str().unwrap().to_owned();
    assert_ne!(new_key, bio.key);
    east.restart().await;
    let old = Api::new(&east, &bio.key);
    let resp = old.get(&format!("{}/models", old.base)).await;
    assert_eq!(resp.status().as_u16(), 401);
    let api = Api::new(&east, &new_key);
    let model: Value = api
        .get(&format!("{}/models/{}", api.base, bio.model))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(model["status"], "Succeeded", "{model}");
    let (s, v) = api
        .recognize(
            &east.url,
            &format!("language=en-US&cid={}", bio.endpoint),
            bio.clip.clone(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["DisplayText"], bio.transcript);
    let r = http()
        .get(format!(
            "{}/speaker-recognition/verification/text-independent/profiles/{}?api-version=2021-09-05",
            east.url, bio.profile
        ))
        .header(KEY, &new_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["enrollmentsCount"], 1, "{p}");
    drop(east);

    // Damage: one flipped byte in one chunk. verify names the snapshots and the chunk;
    // restore refuses and writes nothing.
    let chunks = chunk_files(&repo);
    let victim = chunks
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
        .clone();
    let chunk_id = victim.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = std::fs::read(&victim).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let (ok, out, _) = cli(&west, &["backup", "verify", "--read-data"]);
    assert!(!ok, "verify must fail:\n{out}");
    assert!(out.contains(&format!("DAMAGED  {snapshot}")), "{out}");
    assert!(out.contains(&chunk_id), "{out}");
    let damaged = empty_region("westus", &repo).await;
    let (ok, _, err) = cli(&damaged, &["restore", "--snapshot", &snapshot]);
    assert!(!ok);
    assert!(err.contains(&chunk_id), "{err}");
    assert!(
        blob_hashes(&damaged.data_dir()).is_empty(),
        "nothing restored"
    );
    assert!(Store::open(
        &format!(
            "sqlite://{}",
            damaged.data_dir().join("tandem.db").display()
        ),
        &format!("file://{}", damaged.data_dir().join("blobs").display()),
    )
    .await
    .unwrap()
    .meta
    .list_resources(&"westus".parse().unwrap())
    .await
    .unwrap()
    .is_empty());
    // Repaired (the byte flipped back), then a truncated manifest: named too.
    bytes[at] ^= 0x01;
    std::fs::write(&victim, &bytes).unwrap();
    let manifest = repo.join("snapshots").join(&snapshot);
    let m = std::fs::read(&manifest).unwrap();
    std::fs::write(&manifest, &m[..m.len() / 2]).unwrap();
    let v = {
        let (ok, out, _) = cli(&west, &["backup", "verify", "--json"]);
        assert!(!ok);
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let bad: Vec<&str> = v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["ok"] == false)
        .map(|s| s["snapshot"].as_str().unwrap())
        .collect();
    assert_eq!(bad, vec![snapshot.as_str()], "{v}");
    let (ok, _, err) = cli(&damaged, &["restore", "--snapshot", &snapshot]);
    assert!(!ok, "a truncated manifest is refused");
    eprintln!("truncated manifest: {err}");
}

/// `tandem serve` backs itself up: an acknowledged write is in a snapshot the worker takes on
/// its own, and the snapshot restores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_backs_up_acknowledged_writes() {
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("westus");
    let west = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: vec![
                "[backup]".into(),
                format!("target = \"file://{}\"", repo.display()),
                "interval_secs = 1".into(),
            ],
            ..RegionOptions::default()
        },
    )
    .await;
    let keys = west.create_resource("late");
    let api = Api::new(&west, &keys.key1);
    let text = b"the mitochondria is the powerhouse of the cell\n".to_vec();
    let dataset = api.upload("Language", "acknowledged", text).await;
    let acknowledged = Instant::now();
    let id = dataset["self"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    // Wait for a snapshot that holds the dataset (the worker runs every second).
    let snapshot = loop {
        assert!(
            acknowledged.elapsed() < Duration::from_secs(60),
            "no backup holds the write"
        );
        let list = cli_json(&west, &["backup", "list", "--json"]);
        let newest = list
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|s| s["files"].as_u64().unwrap_or(0) >= 1)
            .map(|s| s["id"].as_str().unwrap().to_owned());
        if let Some(s) = newest {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!(
        "a snapshot held the write {:?} after it was acknowledged",
        acknowledged.elapsed()
    );
    let metrics = http()
        .get(format!("{}/metrics", west.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("tandem_backup_runs_total{outcome=\"ok\""),
        "{metrics}"
    );
    let mut restored = empty_region("westus", &repo).await;
    cli_json(&restored, &["restore", "--snapshot", &snapshot, "--json"]);
    restored.restart().await;
    let api = Api::new(&restored, &keys.key1);
    let got: Value = api
        .get(&format!("{}/datasets/{id}", api.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["displayName"], "acknowledged", "{got}");
}

/// kill -9 of `tandem serve` under a stream of acknowledged writes: after the restart every
/// acknowledged write is there, and the next backup holds every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill9_and_reach_the_next_backup() {
    let repos = tempfile::tempdir().unwrap();
    let repo = repos.path().join("westus");
    let mut west = RegionProcess::start(
        Path::new(BIN),
        "westus",
        RegionOptions {
            extra_config: vec![
                "[backup]".into(),
                format!("target = \"file://{}\"", repo.display()),
                "interval_secs = 1".into(),
            ],
            ..RegionOptions::default()
        },
    )
    .await;
    let keys = west.create_resource("writes");
    // A writer uploads datasets as fast as the region acknowledges them.
    let writer = {
        let api = Api::new(&west, &keys.key1);
        tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0.. {
                let form = reqwest::multipart::Form::new()
                    .text("displayName", format!("w{i}"))
                    .text("locale", "en-US")
                    .text("kind", "Language")
                    .part(
                        "data",
                        reqwest::multipart::Part::bytes(format!("write number {i}\n").into_bytes())
                            .file_name("data.txt"),
                    );
                let sent = api
                    .http
                    .post(format!("{}/datasets/upload", api.base))
                    .header(KEY, &api.key)
                    .multipart(form)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().as_u16() == 201 => {
                        let v: Value = r.json().await.unwrap();
                        acked.push(
                            v["self"]
                                .as_str()
                                .unwrap()
                                .rsplit('/')
                                .next()
                                .unwrap()
                                .to_owned(),
                        );
                    }
                    // The region died: what was not acknowledged does not count.
                    _ => return acked,
                }
            }
            acked
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    west.kill9();
    let acked = writer.await.unwrap();
    assert!(acked.len() >= 5, "only {} writes acknowledged", acked.len());
    west.restart().await;
    let restarted = time::OffsetDateTime::now_utc();
    let api = Api::new(&west, &keys.key1);
    for id in &acked {
        let r = api.get(&format!("{}/datasets/{id}", api.base)).await;
        assert_eq!(r.status().as_u16(), 200, "acknowledged dataset {id} lost");
    }
    // The first snapshot started after the restart holds every acknowledged write.
    let started = Instant::now();
    let snapshot = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no backup after the restart"
        );
        let list = cli_json(&west, &["backup", "list", "--json"]);
        let after = list.as_array().unwrap().iter().find(|s| {
            time::OffsetDateTime::parse(
                s["time"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
                > restarted
        });
        if let Some(s) = after {
            break s["id"].as_str().unwrap().to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let restored = empty_region("westus", &repo).await;
    cli_json(&restored, &["restore", "--snapshot", &snapshot, "--json"]);
    let store = Store::open(
        &format!(
            "sqlite://{}",
            restored.data_dir().join("tandem.db").display()
        ),
        &format!("file://{}", restored.data_dir().join("blobs").display()),
    )
    .await
    .unwrap();
    let resource = keys.id.parse().unwrap();
    let page = store
        .meta
        .list_assets(resource, tandem_store::AssetKind::Dataset, 0, 10_000)
        .await
        .unwrap();
    let held: std::collections::HashSet<String> =
        page.values.iter().map(|a| a.id.to_string()).collect();
    for id in &acked {
        assert!(
            held.contains(id),
            "snapshot {snapshot} lacks acknowledged dataset {id}"
        );
    }
    eprintln!(
        "{} acknowledged writes, all restored from {snapshot}",
        acked.len()
    );
    store.close().await;
}
