//! Backups to a real S3-compatible server (issue #5): `scripts/s3-server.sh run` (which
//! `make test` and `.ci/run` use) starts a Garage node and sets `TANDEM_TEST_S3_URL` and the
//! `AWS_*` variables. The region's config names the bucket, endpoint, region, key id and a
//! secret key *file*, as an operator would write it; the environment of the `tandem` processes
//! carries no S3 credentials (they are removed), so the config path is what is tested.
//!
//! A region with a trained custom model is backed up to the bucket, verified with
//! `--read-data`, restored from the bucket into an empty region of the same name (every blob's
//! sha256 and every metadata row match) and into another region (new keys; the model is served
//! there). Without `TANDEM_TEST_S3_URL` the test skips, unless `TANDEM_REQUIRE_S3=1`, which CI
//! sets so that a missing server fails instead of passing quietly.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::backup::*;
use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};

struct S3Env {
    url: String,
    endpoint: String,
    region: String,
    key_id: String,
    secret: String,
}

fn s3_env() -> Option<S3Env> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let url = match var("TANDEM_TEST_S3_URL") {
        Some(u) => u,
        None => {
            assert!(
                var("TANDEM_REQUIRE_S3").as_deref() != Some("1"),
                "TANDEM_REQUIRE_S3=1 but TANDEM_TEST_S3_URL is not set: start a server with \
                 scripts/s3-server.sh run <command>"
            );
            return None;
        }
    };
    Some(S3Env {
        url: url.trim_end_matches('/').to_owned(),
        endpoint: var("TANDEM_BACKUP_S3_ENDPOINT")
            .or_else(|| var("AWS_ENDPOINT_URL"))
            .expect("TANDEM_BACKUP_S3_ENDPOINT"),
        region: var("AWS_REGION").unwrap_or_else(|| "garage".into()),
        key_id: var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID"),
        secret: var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY"),
    })
}

/// `[backup]` lines for a repository at `url`, with the secret in a file under `dir`.
fn s3_config(s3: &S3Env, url: &str, dir: &Path) -> Vec<String> {
    let secret_file = dir.join("s3-secret");
    std::fs::write(&secret_file, format!("{}\n", s3.secret)).unwrap();
    vec![
        "[backup]".into(),
        format!("target = \"{url}\""),
        "interval_secs = 0".into(),
        format!("s3_endpoint = \"{}\"", s3.endpoint),
        format!("s3_region = \"{}\"", s3.region),
        format!("s3_access_key_id = \"{}\"", s3.key_id),
        format!("s3_secret_access_key_file = \"{}\"", secret_file.display()),
    ]
}

/// `tandem <args> --config <region's config>` with no S3 variables in its environment.
fn tandem(region: &RegionProcess, args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).arg("--config").arg(region.config_path());
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "TANDEM_BACKUP_S3_ENDPOINT",
        "TANDEM_BACKUP_S3_REGION",
    ] {
        cmd.env_remove(v);
    }
    let out = cmd.output().expect("run tandem");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tandem_json(region: &RegionProcess, args: &[&str]) -> Value {
    let (ok, out, err) = tandem(region, args);
    assert!(ok, "tandem {args:?} failed: {err}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

async fn start(name: &str, extra: Vec<String>) -> RegionProcess {
    RegionProcess::start(
        Path::new(BIN),
        name,
        RegionOptions {
            extra_config: extra,
            ..RegionOptions::default()
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_backs_up_to_s3_and_restores_from_it_into_any_region() {
    let Some(s3) = s3_env() else {
        println!("skipped: no S3 server (run through scripts/s3-server.sh run, as make test does)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A fresh prefix per run: the bucket outlives the test.
    let url = format!("{}/backup-s3-{}", s3.url, uuid_like_suffix());
    let config = s3_config(&s3, &url, dir.path());

    let west = start("westus", config.clone()).await;
    let keys = west.create_resource("biology");
    let api = Api::new(&west, &keys.key1);
    api.upload("Acoustic", "biology audio", acoustic_zip(10))
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
    let model_id = model_self.rsplit('/').next().unwrap().to_owned();

    let first = tandem_json(&west, &["backup", "run", "--json"]);
    let snapshot = first["snapshot"].as_str().unwrap().to_owned();
    assert!(first["files"].as_u64().unwrap() >= 10, "{first}");
    assert!(first["new_chunks"].as_u64().unwrap() > 0, "{first}");
    let again = tandem_json(&west, &["backup", "run", "--json"]);
    assert_eq!(again["new_chunks"], 0, "an unchanged re-backup: {again}");
    let verify = tandem_json(&west, &["backup", "verify", "--read-data", "--json"]);
    assert_eq!(verify["ok"], true, "{verify}");
    let list = tandem_json(&west, &["backup", "list", "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");

    // A wrong secret is refused with a clear error, not a hang or a panic.
    let bad_dir = tempfile::tempdir().unwrap();
    let bad = S3Env {
        secret: "not-the-secret".into(),
        url: s3.url.clone(),
        endpoint: s3.endpoint.clone(),
        region: s3.region.clone(),
        key_id: s3.key_id.clone(),
    };
    let mut wrong = start("westus", s3_config(&bad, &url, bad_dir.path())).await;
    wrong.kill9();
    let (ok, out, err) = tandem(&wrong, &["backup", "list"]);
    assert!(!ok, "a wrong secret must fail: {out}");
    assert!(
        !err.contains("not-the-secret"),
        "no secret in errors: {err}"
    );
    eprintln!("wrong secret: {}", err.trim());

    // Same region, empty store: byte-identical.
    let mut same = start("westus", config.clone()).await;
    same.kill9();
    let out = tandem_json(&same, &["restore", "--snapshot", &snapshot, "--json"]);
    assert!(out["new_keys"].as_array().unwrap().is_empty(), "{out}");
    assert_eq!(blob_hashes(&west.data_dir()), blob_hashes(&same.data_dir()));
    assert_eq!(
        export(&west.data_dir()).await,
        export(&same.data_dir()).await,
        "every metadata row matches"
    );

    // Another region: ids kept, new keys, the model is there.
    let mut east = start("eastus", config.clone()).await;
    east.kill9();
    let out = tandem_json(&east, &["restore", "--snapshot", "latest", "--json"]);
    assert_eq!(out["source_region"], "westus", "{out}");
    let new_key = out["new_keys"][0]["key1"].as_str().unwrap().to_owned();
    east.restart().await;
    let api = Api::new(&east, &new_key);
    let r = api.get(&format!("{}/models/{model_id}", api.base)).await;
    assert_eq!(r.status().as_u16(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["status"], "Succeeded", "{m}");
}

/// A short random suffix (the bucket is shared by the runs of one server).
fn uuid_like_suffix() -> String {
    format!("{:016x}", rand_u64())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos(),
    );
    h.finish()
}

/// A region whose blobs live in the bucket (`[storage] blob_url = "s3://…"`, as a multi-node
/// region keeps them): uploads, training and speaker enrollments write there and nothing to
/// the local blob directory; a restart serves them back; and a backup of it restores into a
/// region on plain local disk, byte for byte (a restore crosses storage backends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_keeps_its_blobs_in_s3_and_restores_onto_local_disk() {
    let Some(s3) = s3_env() else {
        println!("skipped: no S3 server (run through scripts/s3-server.sh run, as make test does)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let blobs_url = format!("{}/region-blobs-{}", s3.url, uuid_like_suffix());
    let repo = dir.path().join("repo");
    let secret_file = dir.path().join("s3-secret");
    std::fs::write(&secret_file, format!("{}\n", s3.secret)).unwrap();
    let mut config = manual(&repo);
    config.extend([
        "[storage]".to_owned(),
        format!("blob_url = \"{blobs_url}\""),
        format!("s3_endpoint = \"{}\"", s3.endpoint),
        format!("s3_region = \"{}\"", s3.region),
        format!("s3_access_key_id = \"{}\"", s3.key_id),
        format!("s3_secret_access_key_file = \"{}\"", secret_file.display()),
    ]);
    let mut west = start("westus", config).await;
    let keys = west.create_resource("s3blobs");
    let api = Api::new(&west, &keys.key1);
    let audio = api.upload("Acoustic", "clips", acoustic_zip(5)).await;
    let audio_id = audio["self"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let local = west.data_dir().join("blobs");
    let local_files = walk_files(&local);
    assert!(
        local_files.is_empty(),
        "blobs went to the bucket, not to {}: {local_files:?}",
        local.display()
    );
    let raw = tandem_objects::open_url(
        &blobs_url,
        &tandem_objects::S3Options {
            endpoint: Some(s3.endpoint.clone()),
            region: Some(s3.region.clone()),
            access_key_id: Some(s3.key_id.clone()),
            secret_access_key: Some(s3.secret.clone()),
            allow_http: true,
            ..Default::default()
        },
    )
    .unwrap();
    let listed: Vec<_> = {
        use futures::TryStreamExt;
        raw.store.list(None).try_collect().await.unwrap()
    };
    assert!(
        listed
            .iter()
            .any(|o| o.location.as_ref().contains(&audio_id)),
        "the dataset's files are in the bucket: {:?}",
        listed
            .iter()
            .map(|o| o.location.to_string())
            .collect::<Vec<_>>()
    );

    west.restart().await;
    let api = Api::new(&west, &keys.key1);
    let files: Value = api
        .get(&format!("{}/datasets/{audio_id}/files", api.base))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !files["values"].as_array().unwrap().is_empty(),
        "served after a restart: {files}"
    );

    // Back up the S3-backed region, restore it into a region on local disk.
    let snap = tandem_json(&west, &["backup", "run", "--json"]);
    let mut east = start("westus", manual(&repo)).await;
    east.kill9();
    let out = tandem_json(
        &east,
        &[
            "restore",
            "--snapshot",
            snap["snapshot"].as_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(out["files"], snap["files"], "{out}");
    let restored = walk_files(&east.data_dir().join("blobs"));
    assert_eq!(restored.len() as u64, snap["files"].as_u64().unwrap());
    east.restart().await;
    let api = Api::new(&east, &keys.key1);
    let r = api.get(&format!("{}/datasets/{audio_id}", api.base)).await;
    assert_eq!(r.status().as_u16(), 200);
}

/// Files under `root` (the layout marker left out).
fn walk_files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let key = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if !key.starts_with("_tandem") {
                    out.push(key);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}
