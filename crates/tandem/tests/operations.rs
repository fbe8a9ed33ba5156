//! Resources, quotas, durability and operations routes on real region processes.

mod common;
use common::*;

async fn voices_status(http: &reqwest::Client, base: &str, key: &str) -> u16 {
    http.get(format!("{base}/cognitiveservices/voices/list"))
        .header(KEY, key)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn cli_changes_apply_to_the_running_region_at_once() {
    let west = region("westus").await;
    let http = http();
    let k = west.create_resource("rotating");
    assert_eq!(voices_status(&http, &west.url, &k.key1).await, 200);

    let out = west.cli(&[
        "resource",
        "regenerate-key",
        "rotating",
        "--key",
        "key1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let new_key1 = v["key1"].as_str().unwrap();
    assert_ne!(new_key1, k.key1);
    assert_eq!(
        voices_status(&http, &west.url, &k.key1).await,
        401,
        "old key1 is dead"
    );
    assert_eq!(voices_status(&http, &west.url, new_key1).await, 200);
    assert_eq!(
        voices_status(&http, &west.url, &k.key2).await,
        200,
        "key2 untouched"
    );

    let list = west.cli(&["resource", "list", "--json"]);
    assert!(
        list.contains("rotating") && !list.contains(&k.key2),
        "{list}"
    );

    west.cli(&["resource", "delete", "rotating"]);
    assert_eq!(voices_status(&http, &west.url, new_key1).await, 401);
    assert_eq!(voices_status(&http, &west.url, &k.key2).await, 401);
}

#[tokio::test]
async fn admin_api_needs_its_token_and_manages_resources() {
    let west = region("westus").await;
    let http = http();
    let base = format!("{}/admin/v1/resources", west.url);

    let r = http.get(&base).send().await.unwrap();
    assert_azure_error(r, 403).await;
    let r = http.get(&base).bearer_auth("wrong").send().await.unwrap();
    assert_azure_error(r, 403).await;

    let r = http
        .post(&base)
        .bearer_auth(&west.admin_token)
        .json(&serde_json::json!({"name": "via-api", "concurrencyLimit": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: serde_json::Value = r.json().await.unwrap();
    let (id, key1) = (
        created["id"].as_str().unwrap(),
        created["key1"].as_str().unwrap(),
    );
    assert_eq!(created["region"], "westus");
    assert_eq!(voices_status(&http, &west.url, key1).await, 200);

    let r = http
        .post(&base)
        .bearer_auth(&west.admin_token)
        .json(&serde_json::json!({"name": "via-api"}))
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 409).await;
    let r = http
        .post(&base)
        .bearer_auth(&west.admin_token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 400).await;

    let r = http
        .patch(format!("{base}/{id}"))
        .bearer_auth(&west.admin_token)
        .json(&serde_json::json!({"concurrencyLimit": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["concurrencyLimit"],
        3
    );

    let r = http
        .post(format!("{base}/{id}/regenerateKey"))
        .bearer_auth(&west.admin_token)
        .json(&serde_json::json!({"keyName": "key1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let new_key = r.json::<serde_json::Value>().await.unwrap()["key1"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(voices_status(&http, &west.url, key1).await, 401);
    assert_eq!(voices_status(&http, &west.url, &new_key).await, 200);

    let r = http
        .delete(format!("{base}/{id}"))
        .bearer_auth(&west.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = http
        .get(format!("{base}/{id}"))
        .bearer_auth(&west.admin_token)
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 404).await;
    assert_eq!(voices_status(&http, &west.url, &new_key).await, 401);
}

#[tokio::test]
async fn concurrency_quota_overflows_into_429_with_retry_after() {
    let west = region("westus").await;
    let out = west.cli(&[
        "resource",
        "create",
        "--name",
        "tiny",
        "--concurrency",
        "1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let key = v["key1"].as_str().unwrap().to_owned();
    let http = http();

    // Request A holds the only slot: its body stalls until we feed it. B (a voice list) is
    // sent until it is refused. A is admitted as soon as its headers arrive, but while a B
    // holds the slot at that moment A itself is refused: then A starts again.
    let wav = wav_bytes(&biology()[1].path);
    let mut refused = None;
    let mut held = None;
    for _attempt in 0..20 {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        tx.send(Ok(wav[..1024].to_vec())).await.unwrap();
        let stream =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
        let a = tokio::spawn({
            let http = http.clone();
            let url = stt_url(&west.url, "language=en-US");
            let key = key.clone();
            async move {
                http.post(url)
                    .header(KEY, key)
                    .body(reqwest::Body::wrap_stream(stream))
                    .send()
                    .await
                    .unwrap()
            }
        });
        for _ in 0..2000 {
            if a.is_finished() {
                break;
            }
            let r = http
                .get(format!("{}/cognitiveservices/voices/list", west.url))
                .header(KEY, &key)
                .send()
                .await
                .unwrap();
            if r.status() == 429 {
                refused = Some(r);
                break;
            }
            tokio::task::yield_now().await;
        }
        if refused.is_some() {
            held = Some((a, tx));
            break;
        }
        // A was refused while a B held the slot (or never got in): try again.
        drop(tx);
        let ra = a.await.unwrap();
        assert_eq!(ra.status(), 429, "A ended without B ever being refused");
    }
    let (a, tx) = held.expect("A never held the slot while B was sent");
    let r = refused.expect("the second concurrent request was never refused");
    assert_eq!(r.headers()["retry-after"], "1");
    assert_azure_error(r, 429).await;

    // Feed A the rest: it completes normally, and the slot is free again.
    tx.send(Ok(wav[1024..].to_vec())).await.unwrap();
    drop(tx);
    let ra = a.await.unwrap();
    assert_eq!(ra.status(), 200);
    assert_eq!(voices_status(&http, &west.url, &key).await, 200);
}

#[tokio::test]
async fn kill_9_in_the_middle_of_writes_loses_nothing_acknowledged() {
    let mut west = region("westus").await;
    let http = http();
    let url = format!("{}/admin/v1/resources", west.url);
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let mut writers = Vec::new();
    for w in 0..4 {
        let (http, url, token, ack_tx) = (
            http.clone(),
            url.clone(),
            west.admin_token.clone(),
            ack_tx.clone(),
        );
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let r = http
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&serde_json::json!({"name": format!("w{w}-{i}")}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        let v: serde_json::Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => break, // died mid-response: not acknowledged
                        };
                        let _ = ack_tx.send((
                            v["name"].as_str().unwrap().to_owned(),
                            v["key1"].as_str().unwrap().to_owned(),
                        ));
                    }
                    _ => break, // the region is gone
                }
            }
        }));
    }
    drop(ack_tx);
    let mut acked = Vec::new();
    while acked.len() < 60 {
        acked.push(ack_rx.recv().await.expect("writers stopped early"));
    }
    west.kill9(); // writes still in flight
    for w in writers {
        w.await.unwrap();
    }
    while let Ok(a) = ack_rx.try_recv() {
        acked.push(a);
    }

    west.restart().await;
    let list = west.cli(&["resource", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(list.trim()).unwrap();
    let names: std::collections::HashSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for (name, key1) in &acked {
        assert!(
            names.contains(name.as_str()),
            "acknowledged {name} was lost"
        );
        let r = http
            .post(format!("{}/sts/v1.0/issueToken", west.url))
            .header(KEY, key1)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "the key of acknowledged {name} no longer works"
        );
    }
}

#[tokio::test]
async fn sigterm_is_graceful_and_data_survives_restart() {
    let mut west = region("westus").await;
    let k = west.create_resource("survivor");
    let status = west.sigterm();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(west.log().contains("shutting down gracefully"));
    west.restart().await;
    assert_eq!(voices_status(&http(), &west.url, &k.key1).await, 200);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let west = region("westus").await;
    let k = west.create_resource("ops");
    let http = http();
    let r = http
        .get(format!("{}/healthz", west.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{}/readyz", west.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["checks"]["engines"], "ok");
    assert_eq!(v["checks"]["metadata"], "ok");

    let r = http
        .post(stt_url(&west.url, "language=en-US"))
        .header(KEY, &k.key1)
        .body(wav_bytes(&biology()[2].path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(format!("{}/nope", west.url)).send().await.unwrap();
    assert_azure_error(r, 404).await;

    let metrics = http
        .get(format!("{}/metrics", west.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "tandem_http_requests_total{",
        "route=\"/speech/recognition/{mode}/cognitiveservices/v1\"",
        "tandem_http_request_duration_seconds_bucket",
        "tandem_engine_real_time_factor_count{engine=",
        "tandem_stt_queue_depth",
        "region=\"westus\"",
    ] {
        assert!(
            metrics.contains(needle),
            "metrics lack {needle}:\n{metrics}"
        );
    }
}
