//! Endpoint logs, the "log data" asset, through a real region process: content logging is off
//! until asked for (per request with `storeAudio=true`, or per endpoint with
//! `contentLoggingEnabled`, which wins); each logged recognition is its audio byte for byte and
//! a transcription of what the caller got; logs are listed, read, deleted one by one or up to a
//! day, and go with their endpoint and their resource. Also Endpoints_Update re-pointing an
//! endpoint at another model without changing its id.

mod common;
use std::time::Duration;

use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};

/// Trains a model from the biology language data; returns its `self`.
async fn trained_model(a: &Api, name: &str) -> String {
    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let language = a.upload("Language", name, text).await;
    let bases: Value = a
        .get(&format!("{}/models/base", a.base))
        .await
        .json()
        .await
        .unwrap();
    let resp = a
        .post(
            "/models",
            json!({
                "baseModel": {"self": bases["values"][0]["self"]},
                "datasets": [{"self": language["self"]}],
                "locale": "en-US",
                "displayName": name,
            }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let model: Value = resp.json().await.unwrap();
    let url = model["self"].as_str().unwrap().to_owned();
    a.wait(&url, Duration::from_secs(120)).await;
    url
}

async fn patch(a: &Api, url: &str, body: Value) -> reqwest::Response {
    a.http
        .patch(url)
        .header(KEY, &a.key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn logs(a: &Api, url: &str) -> Vec<Value> {
    let resp = a.get(url).await;
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.unwrap();
    v["values"].as_array().unwrap().clone()
}

/// Files (not directories) under `dir`, 0 when it does not exist.
fn files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { files_under(&p) } else { 1 })
        .sum()
}

fn kinds(files: &[Value]) -> Vec<&str> {
    let mut k: Vec<&str> = files.iter().map(|f| f["kind"].as_str().unwrap()).collect();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_logs_are_opt_in_readable_deletable_and_go_with_their_endpoint() {
    let region = region("westus").await;
    let owner = region.create_resource("owner");
    let other = region.create_resource("other");
    let a = Api::new(&region, &owner.key1);
    let b = Api::new(&region, &other.key1);
    let clip = &biology()[0];
    let wav = wav_bytes(&clip.path);

    let model = trained_model(&a, "biology").await;
    let resp = a
        .post(
            "/endpoints",
            json!({"model": {"self": model}, "locale": "en-US", "displayName": "bio"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let endpoint: Value = resp.json().await.unwrap();
    let endpoint_url = endpoint["self"].as_str().unwrap().to_owned();
    let cid = endpoint_url.rsplit('/').next().unwrap().to_owned();
    assert_eq!(endpoint["properties"], json!({"loggingEnabled": false}));
    let logs_url = endpoint["links"]["logs"].as_str().unwrap().to_owned();
    assert_eq!(logs_url, format!("{endpoint_url}/files/logs"));

    // Off by default: a recognition leaves nothing.
    let q = format!("language=en-US&cid={cid}");
    let (status, _) = a.recognize(&region.url, &q, wav.clone()).await;
    assert_eq!(status, 200);
    assert!(
        logs(&a, &logs_url).await.is_empty(),
        "logged without asking"
    );

    // Asked for by the request: the audio byte for byte, and what the caller got.
    let (status, said) = a
        .recognize(&region.url, &format!("{q}&storeAudio=true"), wav.clone())
        .await;
    assert_eq!(status, 200);
    let files = logs(&a, &logs_url).await;
    assert_eq!(kinds(&files), ["Audio", "Transcription"], "{files:?}");
    for f in &files {
        let name = f["name"].as_str().unwrap();
        let id = f["self"].as_str().unwrap().rsplit('/').next().unwrap();
        assert!(
            id.starts_with(&f["createdDateTime"].as_str().unwrap()[..10]),
            "{f}"
        );
        assert!(name.ends_with(if f["kind"] == "Audio" {
            ".wav"
        } else {
            ".v2.json"
        }));
        let one: Value = a
            .get(f["self"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(&one, f);
        let content = a.get(f["links"]["contentUrl"].as_str().unwrap()).await;
        assert_eq!(content.status().as_u16(), 200);
        let bytes = content.bytes().await.unwrap();
        assert_eq!(f["properties"]["size"], bytes.len());
        if f["kind"] == "Audio" {
            assert_eq!(bytes.as_ref(), wav.as_slice(), "the audio as received");
        } else {
            let t: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(
                t["recognition"], said,
                "the transcription is what the caller got"
            );
            assert_eq!(t["endpoint"], cid.as_str());
            assert_eq!(t["locale"], "en-US");
            assert_eq!(t["mode"], "conversation");
        }
    }

    // On for the endpoint: every recognition is logged, and the request cannot opt out.
    let resp = patch(
        &a,
        &endpoint_url,
        json!({"properties": {"contentLoggingEnabled": true}}),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 200);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["properties"], json!({"loggingEnabled": true}));
    assert_eq!(patched["self"], endpoint_url.as_str(), "same endpoint");
    for query in [q.clone(), format!("{q}&storeAudio=false")] {
        let (status, _) = a.recognize(&region.url, &query, wav.clone()).await;
        assert_eq!(status, 200);
    }
    let files = logs(&a, &logs_url).await;
    assert_eq!(files.len(), 6);

    // Paging.
    let page: Value = a
        .get(&format!("{logs_url}?top=4"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["values"].as_array().unwrap().len(), 4);
    let next = page["@nextLink"].as_str().unwrap().to_owned();
    assert_eq!(logs(&a, &next).await.len(), 2);

    // Tenancy and bad ids.
    let first = files[0]["self"].as_str().unwrap().to_owned();
    v3_error(b.get(&logs_url).await, 404, "NotFound").await;
    v3_error(b.get(&first).await, 404, "NotFound").await;
    v3_error(b.delete(&first).await, 404, "NotFound").await;
    v3_error(
        a.get(&format!("{logs_url}/2023-03-13_163715__not-a-guid_wav"))
            .await,
        404,
        "NotFound",
    )
    .await;
    v3_error(
        a.get(&format!("{}/endpoints/{}/files/logs", a.base, uuid_like()))
            .await,
        404,
        "NotFound",
    )
    .await;
    assert_eq!(logs(&a, &logs_url).await.len(), 6, "nothing lost");

    // Base-model logs, by locale.
    let (status, _) = a
        .recognize(&region.url, "language=en-US&storeAudio=true", wav.clone())
        .await;
    assert_eq!(status, 200);
    let base_logs = format!("{}/endpoints/base/en-US/files/logs", a.base);
    assert_eq!(
        kinds(&logs(&a, &base_logs).await),
        ["Audio", "Transcription"]
    );
    assert!(logs(&b, &base_logs).await.is_empty(), "another resource's");
    v3_error(
        a.get(&format!("{}/endpoints/base/xx-XX/files/logs", a.base))
            .await,
        404,
        "NotFound",
    )
    .await;

    // Deletion: one file; up to a day; everything.
    let resp = a.delete(&first).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(a.get(&first).await.status().as_u16(), 404);
    assert_eq!(logs(&a, &logs_url).await.len(), 5);
    v3_error(
        a.delete(&format!("{logs_url}?endDate=13/03/2023")).await,
        400,
        "InvalidParameterValue",
    )
    .await;
    let resp = a.delete(&format!("{logs_url}?endDate=2000-01-01")).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(
        logs(&a, &logs_url).await.len(),
        5,
        "all are newer than 2000"
    );
    let resp = a.delete(&logs_url).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(logs(&a, &logs_url).await.is_empty());
    let resp = a.delete(&base_logs).await;
    assert_eq!(resp.status().as_u16(), 204);
    assert!(logs(&a, &base_logs).await.is_empty());

    // Endpoints_Update re-points the endpoint at another model under the same id.
    let second = trained_model(&a, "biology two").await;
    let resp = patch(&a, &endpoint_url, json!({"model": {"self": second}})).await;
    assert_eq!(resp.status().as_u16(), 200);
    let got: Value = a.get(&endpoint_url).await.json().await.unwrap();
    assert_eq!(got["model"]["self"], second.as_str());
    assert_eq!(got["properties"], json!({"loggingEnabled": true}), "kept");
    let (status, heard) = a.recognize(&region.url, &q, wav.clone()).await;
    assert_eq!(status, 200, "{heard}");
    // The first model is free now; the second is in use.
    assert_eq!(a.delete(&model).await.status().as_u16(), 204);
    v3_error(a.delete(&second).await, 409, "InUseViolation").await;
    // A model that does not exist, or a base model, is refused and changes nothing.
    let bogus = format!("{}/models/{}", a.base, uuid_like());
    v3_error(
        patch(&a, &endpoint_url, json!({"model": {"self": bogus}})).await,
        400,
        "InvalidModel",
    )
    .await;
    let got: Value = a.get(&endpoint_url).await.json().await.unwrap();
    assert_eq!(got["model"]["self"], second.as_str());

    // The endpoint's logs go with it, from the API and from the disk.
    assert_eq!(logs(&a, &logs_url).await.len(), 2);
    let blobs = region.data_dir().join("blobs/assets").join(&owner.id);
    assert!(blobs.join(&cid).join("logs").is_dir());
    assert_eq!(a.delete(&endpoint_url).await.status().as_u16(), 204);
    v3_error(a.get(&logs_url).await, 404, "NotFound").await;
    assert_eq!(
        files_under(&blobs.join(&cid)),
        0,
        "endpoint blobs left behind"
    );

    // Deleting the resource removes every blob it had.
    let (status, _) = a
        .recognize(&region.url, "language=en-US&storeAudio=true", wav)
        .await;
    assert_eq!(status, 200);
    assert!(files_under(&blobs) > 0);
    let resp = http()
        .delete(format!("{}/admin/v1/resources/{}", region.url, owner.id))
        .bearer_auth(&region.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(files_under(&blobs), 0, "resource blobs left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locales_of_models_evaluations_and_endpoints() {
    let region = region("westus").await;
    let keys = region.create_resource("owner");
    let a = Api::new(&region, &keys.key1);
    for what in ["models", "evaluations", "endpoints"] {
        let resp = a.get(&format!("{}/{what}/locales", a.base)).await;
        assert_eq!(resp.status().as_u16(), 200, "{what}");
        let v: Value = resp.json().await.unwrap();
        let locales: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap())
            .collect();
        assert!(locales.contains(&"en-US"), "{what}: {v}");
    }
    let resp = http()
        .get(format!("{}/models/locales", a.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}
