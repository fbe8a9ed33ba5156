//! Custom Speech evaluations (Speech-to-text v3.2) through a real region process: an Acoustic
//! dataset of biology clips, a model trained on the biology language data, and an evaluation
//! of the base model against it; then the refusals: a Language dataset as the test set,
//! another resource's model, an unknown dataset.

mod common;
use std::time::{Duration, Instant};

use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};

/// The biology clips of the test set.
const CLIPS: usize = 5;

fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_compare_base_and_custom() {
    let region = region("westus").await;
    let a_keys = region.create_resource("owner");
    let b_keys = region.create_resource("other");
    let a = Api::new(&region, &a_keys.key1);
    let b = Api::new(&region, &b_keys.key1);

    let bases: Value = a
        .get(&format!("{}/models/base", a.base))
        .await
        .json()
        .await
        .unwrap();
    let base_self = bases["values"][0]["self"].as_str().unwrap().to_owned();

    let acoustic = a
        .upload("Acoustic", "biology clips", acoustic_zip(CLIPS))
        .await;
    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let language = a.upload("Language", "biology text", text.clone()).await;
    let resp = a
        .post(
            "/models",
            json!({"baseModel": {"self": base_self}, "datasets": [{"self": language["self"]}],
                   "locale": "en-US", "displayName": "biology"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let model: Value = resp.json().await.unwrap();
    let model_self = model["self"].as_str().unwrap().to_owned();
    a.wait(&model_self, Duration::from_secs(120)).await;

    // Evaluate base (model1) against custom (model2).
    let started = Instant::now();
    let resp = a
        .post(
            "/evaluations",
            json!({"model1": {"self": base_self}, "model2": {"self": model_self},
                   "dataset": {"self": acoustic["self"]}, "locale": "en-US",
                   "displayName": "base vs biology", "description": "five clips"}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = resp.json().await.unwrap();
    assert_eq!(created["self"], location.as_str());
    assert!(
        matches!(created["status"].as_str(), Some("NotStarted" | "Running")),
        "{created}"
    );
    assert_eq!(created["model1"]["self"], base_self.as_str());
    assert_eq!(created["model2"]["self"], model_self.as_str());
    assert_eq!(created["dataset"]["self"], acoustic["self"]);
    let eval = a.wait(&location, Duration::from_secs(300)).await;
    eprintln!("evaluation took {:?}", started.elapsed());
    let p = &eval["properties"];
    eprintln!("properties: {p}");

    let reference_words: u64 = biology()
        .iter()
        .take(CLIPS)
        .map(|c| tandem_engines::text::normalize_for_wer(&c.transcript).len() as u64)
        .sum();
    let mut wers = Vec::new();
    for n in 1..=2 {
        let words = count(p, &format!("wordCount{n}"));
        let (c, s, d, i) = (
            count(p, &format!("correctWordCount{n}")),
            count(p, &format!("wordSubstitutionCount{n}")),
            count(p, &format!("wordDeletionCount{n}")),
            count(p, &format!("wordInsertionCount{n}")),
        );
        assert_eq!(words, reference_words, "{p}");
        assert_eq!(c + s + d, words, "{p}");
        let wer = p[format!("wordErrorRate{n}")].as_f64().unwrap();
        let expected = (s + d + i) as f64 / words as f64;
        assert!((wer - expected).abs() < 1e-9, "{wer} vs {expected}");
        assert_eq!(count(p, &format!("sentenceCount{n}")), CLIPS as u64);
        let ser = p[format!("sentenceErrorRate{n}")].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ser), "{p}");
        wers.push(wer);
    }
    assert!(
        wers[1] < wers[0],
        "custom {} is not below base {}",
        wers[1],
        wers[0]
    );

    // The side-by-side result file.
    let files: Value = a
        .get(&format!("{location}/files"))
        .await
        .json()
        .await
        .unwrap();
    let values = files["values"].as_array().unwrap();
    assert_eq!(values.len(), 1, "{files}");
    assert_eq!(values[0]["kind"], "EvaluationDetails");
    let file_self = values[0]["self"].as_str().unwrap();
    let one: Value = a.get(file_self).await.json().await.unwrap();
    assert_eq!(one, values[0]);
    let content_url = values[0]["links"]["contentUrl"].as_str().unwrap();
    let details: Value = a.get(content_url).await.json().await.unwrap();
    let entries = details["files"].as_array().unwrap();
    assert_eq!(entries.len(), CLIPS, "{details}");
    for e in entries {
        for key in ["name", "reference", "hypothesis1", "hypothesis2"] {
            assert!(e[key].is_string(), "{key} in {e}");
        }
        assert!(e["errors1"]["wordCount"].is_u64(), "{e}");
        assert!(e["errors2"]["wordCount"].is_u64(), "{e}");
    }

    // List, PATCH, the v3.1 alias, other resources, DELETE.
    let listed: Value = a
        .get(&format!("{}/evaluations", a.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["values"].as_array().unwrap().len(), 1);
    let resp = a
        .http
        .patch(&location)
        .header(KEY, &a.key)
        .json(&json!({"displayName": "renamed", "description": "changed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["displayName"], "renamed");
    assert_eq!(patched["description"], "changed");
    assert_eq!(patched["status"], "Succeeded");
    let v31 = location.replace("/v3.2/", "/v3.1/");
    assert_eq!(a.get(&v31).await.status().as_u16(), 200);
    assert_eq!(b.get(&location).await.status().as_u16(), 404);

    // Refusals.
    let body = |m1: &str, m2: &str, ds: &Value| {
        json!({"model1": {"self": m1}, "model2": {"self": m2}, "dataset": {"self": ds},
               "locale": "en-US", "displayName": "bad"})
    };
    v3_error(
        a.post(
            "/evaluations",
            body(&base_self, &model_self, &language["self"]),
        )
        .await,
        400,
        "InvalidDataset",
    )
    .await;
    let b_acoustic = b.upload("Acoustic", "theirs", acoustic_zip(CLIPS)).await;
    v3_error(
        b.post(
            "/evaluations",
            body(&base_self, &model_self, &b_acoustic["self"]),
        )
        .await,
        400,
        "InvalidModel",
    )
    .await;
    let unknown = json!(format!(
        "{}/datasets/00000000-0000-4000-8000-000000000000",
        a.base
    ));
    v3_error(
        a.post("/evaluations", body(&base_self, &model_self, &unknown))
            .await,
        400,
        "InvalidDataset",
    )
    .await;
    let listed: Value = a
        .get(&format!("{}/evaluations", a.base))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["values"].as_array().unwrap().len(),
        1,
        "no half-created evaluation"
    );

    let resp = a
        .http
        .delete(&location)
        .header(KEY, &a.key)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(a.get(&location).await.status().as_u16(), 404);
    assert_eq!(a.get(content_url).await.status().as_u16(), 404);
}
