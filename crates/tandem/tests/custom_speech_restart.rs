//! Custom Speech jobs survive a crash: a region killed while a model trains and an evaluation
//! runs finishes both after it starts again. The crash is made exact by writing, while the
//! region runs, the rows a crash in the middle of both jobs leaves (`Running` without an
//! artifact, `NotStarted` without results), then `kill -9` and a restart on the same data.

mod common;
use std::time::Duration;

use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};
use tandem_store::{AssetKind, AssetStatus, AssetUpdate, Store};

fn id_of(url: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(url.rsplit('/').next().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn training_and_evaluation_interrupted_by_a_crash_finish_after_restart() {
    let mut region = region("westus").await;
    let keys = region.create_resource("owner");
    let a = Api::new(&region, &keys.key1);

    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let language = a.upload("Language", "biology text", text).await;
    let acoustic = a.upload("Acoustic", "two clips", acoustic_zip(2)).await;
    let bases: Value = a
        .get(&format!("{}/models/base", a.base))
        .await
        .json()
        .await
        .unwrap();
    let base_self = bases["values"][0]["self"].as_str().unwrap().to_owned();
    let resp = a
        .post(
            "/models",
            json!({"baseModel": {"self": base_self}, "datasets": [{"self": language["self"]}],
                   "locale": "en-US", "displayName": "biology"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let model_self = resp.json::<Value>().await.unwrap()["self"]
        .as_str()
        .unwrap()
        .to_owned();
    a.wait(&model_self, Duration::from_secs(120)).await;
    let resp = a
        .post(
            "/evaluations",
            json!({"model1": {"self": base_self}, "model2": {"self": model_self},
                   "dataset": {"self": acoustic["self"]}, "locale": "en-US",
                   "displayName": "base vs biology"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let eval_self = resp.json::<Value>().await.unwrap()["self"]
        .as_str()
        .unwrap()
        .to_owned();
    a.wait(&eval_self, Duration::from_secs(300)).await;

    // What a crash in the middle of both jobs leaves behind.
    let data = region.data_dir();
    let store = Store::open(
        &format!("sqlite://{}", data.join("tandem.db").display()),
        &format!("file://{}", data.join("blobs").display()),
    )
    .await
    .unwrap();
    let resource: tandem_core::ResourceId = keys.id.parse().unwrap();
    let model = store
        .meta
        .get_asset(resource, AssetKind::Model, id_of(&model_self))
        .await
        .unwrap()
        .unwrap();
    let mut doc = model.doc.clone();
    doc["artifact"] = Value::Null;
    store
        .meta
        .update_asset(
            resource,
            AssetKind::Model,
            model.id,
            AssetUpdate {
                status: Some(AssetStatus::Running),
                doc: Some(doc),
                ..AssetUpdate::default()
            },
        )
        .await
        .unwrap();
    store
        .meta
        .update_asset(
            resource,
            AssetKind::Evaluation,
            id_of(&eval_self),
            AssetUpdate {
                status: Some(AssetStatus::NotStarted),
                properties: Some(json!({})),
                ..AssetUpdate::default()
            },
        )
        .await
        .unwrap();
    store.close().await;
    let m: Value = a.get(&model_self).await.json().await.unwrap();
    assert_eq!(m["status"], "Running");

    region.restart().await;
    let a = Api::new(&region, &keys.key1);
    let model_self = format!("{}/models/{}", a.base, id_of(&model_self));
    let eval_self = format!("{}/evaluations/{}", a.base, id_of(&eval_self));

    // Both finish on their own, with real results.
    a.wait(&model_self, Duration::from_secs(120)).await;
    let eval = a.wait(&eval_self, Duration::from_secs(300)).await;
    let p = &eval["properties"];
    assert!(p["wordErrorRate1"].is_number(), "{p}");
    assert!(p["wordErrorRate2"].is_number(), "{p}");
    assert!(p["wordCount1"].as_u64().unwrap() > 0, "{p}");
    assert!(region.log().contains("unfinished job restarted"));

    // The retrained model has an artifact again: it deploys and recognizes.
    let resp = a
        .post(
            "/endpoints",
            json!({"model": {"self": model_self}, "locale": "en-US", "displayName": "bio"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let endpoint: Value = resp.json().await.unwrap();
    let cid = id_of(endpoint["self"].as_str().unwrap());
    let clip = &biology()[0];
    let (status, said) = a
        .recognize(
            &region.url,
            &format!("language=en-US&cid={cid}"),
            wav_bytes(&clip.path),
        )
        .await;
    assert_eq!(status, 200, "{said}");
    let text = said["DisplayText"].as_str().unwrap();
    assert!(wer(&clip.transcript, text) < 0.5, "{text}");
}
