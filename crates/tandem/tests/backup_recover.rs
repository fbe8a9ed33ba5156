//! `tandem recover`, the offline failover of a whole region, through real region processes and
//! the real CLI: westus holds the biology language dataset, a model trained on it, a small
//! evaluation and an endpoint; it is backed up and recovered into an empty, stopped eastus
//!
//! - by default: the model's artifact is reused (same base engine), the evaluation is run again
//!   with the same word error rates (decoding is deterministic), and after a restart the
//!   endpoint recognizes a biology clip with the new key exactly as in westus;
//! - with `--retrain`: the model is retrained and still recognizes identically;
//! - without `--json`: the new keys, the step table beside Azure's guide, a line per asset.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::backup::*;
use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};

struct Source {
    model: String,
    evaluation: String,
    endpoint: String,
    wer: Value,
    transcript: Value,
    clip: Vec<u8>,
}

/// The biology language dataset, a model, an evaluation on two clips, an endpoint.
async fn populate(region: &RegionProcess) -> Source {
    let keys = region.create_resource("biology");
    let api = Api::new(region, &keys.key1);
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
    let evaluation = api
        .wait(
            evaluation["self"].as_str().unwrap(),
            Duration::from_secs(300),
        )
        .await;
    let resp = api
        .post(
            "/endpoints",
            json!({"model": {"self": model_self}, "locale": "en-US", "displayName": "biology"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let endpoint: Value = resp.json().await.unwrap();
    let last = |v: &Value| v.as_str().unwrap().rsplit('/').next().unwrap().to_owned();
    let endpoint = last(&endpoint["self"]);
    let clip = wav_bytes(&biology()[0].path);
    let (s, transcript) = api
        .recognize(
            &region.url,
            &format!("language=en-US&cid={endpoint}"),
            clip.clone(),
        )
        .await;
    assert_eq!(s, 200, "{transcript}");
    Source {
        model: last(&model["self"]),
        evaluation: last(&evaluation["self"]),
        endpoint,
        wer: evaluation["properties"]["wordErrorRate1"].clone(),
        transcript: transcript["DisplayText"].clone(),
        clip,
    }
}

/// Recovers the latest snapshot into an empty eastus (with `extra` flags), restarts it, and
/// checks what every recovery must give; returns the report.
async fn recover_into_east(repo: &Path, src: &Source, extra: &[&str]) -> Value {
    let mut east = empty_region("eastus", repo).await;
    let mut args = vec!["recover", "--snapshot", "latest", "--json"];
    args.extend_from_slice(extra);
    let out = cli_json(&east, &args);
    eprintln!("tandem {}:\n{out:#}", args.join(" "));
    assert_eq!(out["source_region"], "westus");
    let steps: Vec<&str> = out["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "upload/restore",
            "model creation",
            "evaluation",
            "deployment"
        ]
    );
    assert_eq!(out["steps"][1]["azure_guide_seconds"], 6 * 3600);
    let keys = out["new_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{out}");
    let key = keys[0]["key1"].as_str().unwrap().to_owned();

    let evaluations = out["evaluations"].as_array().unwrap();
    assert_eq!(evaluations.len(), 1, "{out}");
    let e = &evaluations[0];
    assert_eq!(e["id"], src.evaluation.as_str());
    assert_eq!(e["status"], "Succeeded", "{e}");
    assert_eq!(e["wer_before"][0], src.wer, "{e}");
    assert_eq!(
        e["wer_after"], e["wer_before"],
        "deterministic decoding: the same WER"
    );
    let endpoints = out["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), 1, "{out}");
    assert_eq!(endpoints[0]["id"], src.endpoint.as_str());
    assert_eq!(endpoints[0]["ready"], true, "{out}");

    east.restart().await;
    let api = Api::new(&east, &key);
    let model: Value = api
        .get(&format!("{}/models/{}", api.base, src.model))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(model["status"], "Succeeded", "{model}");
    let evaluation: Value = api
        .get(&format!("{}/evaluations/{}", api.base, src.evaluation))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(evaluation["properties"]["wordErrorRate1"], src.wer);
    let files: Value = api
        .get(&format!(
            "{}/evaluations/{}/files",
            api.base, src.evaluation
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(files["values"].as_array().unwrap().len(), 1, "{files}");
    let (s, v) = api
        .recognize(
            &east.url,
            &format!("language=en-US&cid={}", src.endpoint),
            src.clip.clone(),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["DisplayText"], src.transcript, "the same transcript");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_reuses_or_retrains_reruns_and_redeploys() {
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
    let src = populate(&west).await;
    cli_json(&west, &["backup", "run", "--json"]);

    // The same engine in eastus: the artifact is reused.
    let out = recover_into_east(&repo, &src, &[]).await;
    let models = out["models"].as_array().unwrap();
    assert_eq!(models.len(), 1, "{out}");
    assert_eq!(models[0]["id"], src.model.as_str());
    assert_eq!(models[0]["action"], "reused", "{out}");
    assert_eq!(models[0]["base_model"], "whisper-tiny.en");
    assert_eq!(
        models[0]["base_sha256"].as_str().unwrap().len(),
        64,
        "{out}"
    );

    // --retrain: trained again from the restored dataset, and it recognizes the same.
    let out = recover_into_east(&repo, &src, &["--retrain"]).await;
    let models = out["models"].as_array().unwrap();
    assert_eq!(models[0]["action"], "retrained", "{out}");
    assert_eq!(models[0]["reason"], "--retrain");
    assert_eq!(models[0]["status"], "Succeeded", "{out}");

    // Without --json: the new keys, the table beside Azure's guide, one line per asset.
    let east = empty_region("eastus", &repo).await;
    let out = Command::new(BIN)
        .args(["recover", "--snapshot", "latest", "--config"])
        .arg(east.config_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("tandem recover --snapshot latest:\n{text}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "new keys for eastus",
        "key1: ",
        "STEP",
        "AZURE GUIDE",
        "upload/restore",
        "15 min",
        "model creation",
        "6 h",
        "30 min",
        "10 min",
        "reused artifact (same engine: whisper-tiny.en, base sha256 ",
        "biology evaluation",
        "serving (model loaded in",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}
