//! Issue #6's end-to-end proof, steps 4 and 5: a copied custom model keeps a client's speech
//! recognition going when its home region dies.
//!
//! The biology model is trained in westus and copied to eastus through v3.1 `:copyto` and
//! through v3.2 (`:authorizecopy` → `:copy` → operation); each copy is deployed in eastus. The
//! Rust SDK (`tandem-client`) is configured with westus (its key, its endpoint as `cid`), then
//! eastus (its own key and `cid`). With westus up, the 50 biology clips go through the client
//! and are answered by westus; the same clips sent straight to eastus's endpoint give the very
//! same transcripts (the v3.1 copy too, on a few clips). Then westus is killed with SIGKILL: the
//! client fails over to eastus, sends eastus's `cid` there, and every clip still comes back with
//! westus's transcript, without one failed call. Finally westus comes back and, after the
//! configured `failback_after`, the client returns to it.
//!
//! Which region and which endpoint served a call is not taken on the client's word alone: both
//! endpoints log every recognition (`loggingEnabled`), so each region's endpoint logs count the
//! calls that reached it with its `cid`. The client reaches westus through a `FaultProxy` (so a
//! restarted westus keeps its address); with westus dead, the proxy resets each connection, as
//! a real L4 load balancer does.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::custom_speech::*;
use common::*;
use serde_json::{json, Value};
use tandem_client::{
    ClientConfig, ClientEvent, Policy, RecognizeOptions, RegionEntry, TandemClient,
};
use tandem_testkit::FaultProxy;

/// Clips on which the v3.1 copy is checked too.
const V31_CLIPS: usize = 5;

fn last_segment(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_owned()
}

/// Deploys `model` (its `self`) with every recognition logged; returns the endpoint id.
async fn deploy(api: &Api, model: &str) -> String {
    let resp = api
        .post(
            "/endpoints",
            json!({
                "model": {"self": model},
                "locale": "en-US",
                "displayName": "biology endpoint",
                "properties": {"loggingEnabled": true},
            }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["status"], "Succeeded", "{v}");
    last_segment(v["self"].as_str().unwrap())
}

/// How many recognitions the endpoint has logged (its `Transcription` log files, every page).
async fn logged(api: &Api, cid: &str) -> usize {
    let mut url = format!("{}/endpoints/{cid}/files/logs", api.base);
    let mut n = 0;
    loop {
        let resp = api.get(&url).await;
        assert_eq!(resp.status().as_u16(), 200);
        let page: Value = resp.json().await.unwrap();
        n += page["values"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] == "Transcription")
            .count();
        match page["@nextLink"].as_str() {
            Some(next) => url = next.to_owned(),
            None => return n,
        }
    }
}

/// A successful recognition's `DisplayText`, which must not be empty.
fn display(v: &Value, clip: &str) -> String {
    assert_eq!(v["RecognitionStatus"], "Success", "{clip}: {v}");
    let text = v["DisplayText"].as_str().unwrap_or_default();
    assert!(!text.is_empty(), "{clip}: empty transcript: {v}");
    text.to_owned()
}

fn events(rx: &mut tokio::sync::broadcast::Receiver<ClientEvent>) -> Vec<ClientEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_model_answers_identically_and_takes_over_when_its_region_dies() {
    let t0 = Instant::now();
    let secret = tempfile::tempdir().unwrap();
    let file = secret.path().join("peer.secret");
    std::fs::write(&file, "0f1e2d3c4b5a69788796a5b4c3d2e1f0-copy-failover\n").unwrap();
    // Stable addresses: the regions start together, before either knows the other's port, and
    // westus restarts on a new one.
    let to_west = FaultProxy::start("127.0.0.1:9").await;
    let to_east = FaultProxy::start("127.0.0.1:9").await;
    let opts = |peer: &str, url: String| RegionOptions {
        extra_config: peer_config(peer, &url, &file),
        ..RegionOptions::default()
    };
    let (mut west, east) = tokio::join!(
        RegionProcess::start(Path::new(BIN), "westus", opts("eastus", to_east.url())),
        RegionProcess::start(Path::new(BIN), "eastus", opts("westus", to_west.url())),
    );
    to_west.set_target(&west.url);
    to_east.set_target(&east.url);

    let src_keys = west.create_resource("src");
    let dst_keys = east.create_resource("dst");
    let src = Api::new(&west, &src_keys.key1);
    let dst = Api::new(&east, &dst_keys.key1);

    // 1. Train the biology model in westus.
    let text =
        std::fs::read(shared_data().join("custom-speech-biology/language-data.txt")).unwrap();
    let language = src.upload("Language", "biology text", text).await;
    let resp = src
        .post(
            "/models",
            json!({
                "datasets": [{"self": language["self"]}],
                "locale": "en-US",
                "displayName": "biology",
            }),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    let model: Value = resp.json().await.unwrap();
    let model_self = model["self"].as_str().unwrap().to_owned();
    src.wait(&model_self, Duration::from_secs(120)).await;
    let model_id = last_segment(&model_self);
    eprintln!("regions up and model trained after {:?}", t0.elapsed());

    // 2. Copy it to eastus: v3.1 Models_CopyTo…
    let resp = post_to(
        &src,
        &format!("{}/speechtotext/v3.1/models/{model_id}:copyto", west.url),
        json!({"targetSubscriptionKey": dst_keys.key1}),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 201);
    let copied31: Value = resp.json().await.unwrap();
    assert_eq!(copied31["status"], "Succeeded", "{copied31}");
    assert_eq!(copied31["properties"]["copiedFrom"]["region"], "westus");
    let copied31_id = last_segment(copied31["self"].as_str().unwrap());
    // …and v3.2: authorize on the target, copy on the source, poll the operation.
    let resp = dst
        .post(
            "/models:authorizecopy",
            json!({"sourceResourceId": src_keys.id}),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let auth: Value = resp.json().await.unwrap();
    assert_eq!(auth["targetResourceRegion"], "eastus");
    let resp = post_to(
        &src,
        &format!("{}/models/{model_id}:copy", src.base),
        auth.clone(),
    )
    .await;
    assert_eq!(resp.status().as_u16(), 202);
    let op_url = resp.headers()["operation-location"]
        .to_str()
        .unwrap()
        .to_owned();
    let started = Instant::now();
    let op = loop {
        let v: Value = src.get(&op_url).await.json().await.unwrap();
        if matches!(v["status"].as_str(), Some("Succeeded" | "Failed")) {
            break v;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "hangs: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(op["status"], "Succeeded", "{op}");
    let copied_id = auth["id"].as_str().unwrap().to_owned();
    assert!(
        op["result"]["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/models/{copied_id}")),
        "{op}"
    );
    assert_ne!(copied_id, copied31_id, "two copies");

    // 3. Deploy: the source model in westus, both copies in eastus.
    let west_cid = deploy(&src, &model_self).await;
    let east_cid = deploy(&dst, &format!("{}/models/{copied_id}", dst.base)).await;
    let east31_cid = deploy(&dst, &format!("{}/models/{copied31_id}", dst.base)).await;
    eprintln!("copied and deployed after {:?}", t0.elapsed());

    // The SDK: westus first, eastus second, each with its own key and endpoint. Short probe,
    // open and failback periods, so the failback at the end takes seconds; a generous per-try
    // timeout, because recognitions queue on a 2-core machine.
    // Each region's key is the one of the resource that owns its endpoint.
    let policy = Policy {
        stt_timeout_ms: 30_000,
        probe_interval_ms: 100,
        breaker_open_base_ms: 300,
        breaker_open_max_ms: 600,
        failback_after_ms: 1_500,
        discovery: false,
        ..Policy::default()
    };
    let region_entry = |name: &str, endpoint: String, key: &str, cid: &str| RegionEntry {
        name: name.into(),
        endpoints: vec![endpoint],
        key: Some(key.into()),
        key_file: None,
        cid: Some(cid.into()),
        voice_deployment_id: None,
    };
    let config = ClientConfig {
        regions: vec![
            region_entry("westus", to_west.url(), &src_keys.key1, &west_cid),
            region_entry("eastus", east.url.clone(), &dst_keys.key1, &east_cid),
        ],
        policy: policy.clone(),
        gateway_key: None,
        gateway_key_file: None,
    };
    let client = TandemClient::new(config).unwrap();
    let opts = RecognizeOptions {
        use_custom_model: true,
        ..RecognizeOptions::default()
    };

    // 4. Every clip through the client (westus answers), and straight to eastus's endpoint.
    let clips = biology();
    assert_eq!(clips.len(), 50, "the biology set");
    let audio: Vec<Bytes> = clips
        .iter()
        .map(|c| Bytes::from(wav_bytes(&c.path)))
        .collect();
    let east_query = format!("language=en-US&cid={east_cid}");
    let started = Instant::now();
    let mut west_text = Vec::new();
    let mut mismatches = Vec::new();
    for (clip, wav) in clips.iter().zip(&audio) {
        // One after the other: whisper's threads spin, so two regions recognizing at once on
        // two cores slow each other down several times over.
        let answered = client
            .recognize(wav.clone(), &opts)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", clip.name));
        let (status, direct) = dst.recognize(&east.url, &east_query, wav.to_vec()).await;
        assert_eq!(answered.region, "westus", "{}", clip.name);
        assert_eq!((answered.attempts, answered.failovers), (1, 0));
        assert_eq!(status, 200, "{}: {direct}", clip.name);
        let w = display(&answered.value, &clip.name);
        let e = display(&direct, &clip.name);
        if w != e {
            mismatches.push(format!("{}: westus {w:?} / eastus {e:?}", clip.name));
        }
        west_text.push(w);
    }
    let took = started.elapsed();
    let mean_wer = clips
        .iter()
        .zip(&west_text)
        .map(|(c, t)| wer(&c.transcript, t))
        .sum::<f64>()
        / clips.len() as f64;
    eprintln!("50 clips in both regions in {took:?}; adapted WER {mean_wer:.3}");
    assert!(
        mismatches.is_empty(),
        "{} of 50 transcripts differ between the regions:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    assert_eq!(
        logged(&src, &west_cid).await,
        50,
        "westus's endpoint served 50"
    );
    assert_eq!(
        logged(&dst, &east_cid).await,
        50,
        "eastus's endpoint served 50"
    );

    // The v3.1 copy recognizes identically too.
    let q31 = format!("language=en-US&cid={east31_cid}");
    for ((clip, wav), w) in clips.iter().zip(&audio).zip(&west_text).take(V31_CLIPS) {
        let (status, v) = dst.recognize(&east.url, &q31, wav.to_vec()).await;
        assert_eq!(status, 200, "{}: {v}", clip.name);
        assert_eq!(&display(&v, &clip.name), w, "{} (v3.1 copy)", clip.name);
    }

    // 5. westus dies: the same client fails over to eastus, with eastus's cid.
    let mut rx = client.subscribe();
    west.kill9();
    let started = Instant::now();
    let mut failed_over = Vec::new();
    for ((clip, wav), w) in clips.iter().zip(&audio).zip(&west_text) {
        let answered = client
            .recognize(wav.clone(), &opts)
            .await
            .unwrap_or_else(|e| panic!("{} after the kill: {e}", clip.name));
        assert_eq!(answered.region, "eastus", "{}", clip.name);
        assert_eq!(
            &display(&answered.value, &clip.name),
            w,
            "{} after failover",
            clip.name
        );
        failed_over.push(answered.failovers);
    }
    eprintln!(
        "50 clips after the kill in {:?}; failovers per call {failed_over:?}",
        started.elapsed()
    );
    assert_eq!(
        logged(&dst, &east_cid).await,
        100,
        "the 50 calls after the kill reached eastus's endpoint"
    );
    // The first call had to fail over; once westus's breaker tripped, calls skip it.
    assert_eq!(failed_over[0], 1);
    let moved = failed_over.iter().take_while(|&&f| f == 1).count();
    assert!(
        moved <= policy.breaker_consecutive_failures as usize,
        "{failed_over:?}"
    );
    assert!(
        failed_over[moved..].iter().all(|&f| f == 0),
        "{failed_over:?}"
    );
    let ev = events(&mut rx);
    assert!(
        ev.iter()
            .any(|e| matches!(e, ClientEvent::Failover { from, to }
            if from == "westus" && to == "eastus")),
        "{ev:?}"
    );
    assert!(
        ev.iter()
            .any(|e| matches!(e, ClientEvent::Trip { region, .. } if region == "westus")),
        "{ev:?}"
    );

    // westus comes back (behind the same address): after failback_after, traffic returns.
    west.restart().await;
    let back_up = Instant::now();
    to_west.set_target(&west.url);
    let mut calls = 0;
    let mut in_east = 0;
    let back_after = loop {
        let (clip, wav) = (&clips[calls % 50], &audio[calls % 50]);
        let answered = client
            .recognize(wav.clone(), &opts)
            .await
            .unwrap_or_else(|e| panic!("{} during failback: {e}", clip.name));
        assert_eq!(
            &display(&answered.value, &clip.name),
            &west_text[calls % 50],
            "{} during failback",
            clip.name
        );
        calls += 1;
        if answered.region == "westus" {
            break back_up.elapsed();
        }
        in_east += 1;
        assert!(
            back_up.elapsed() < Duration::from_secs(30),
            "traffic never failed back"
        );
    };
    eprintln!("failed back after {back_after:?} ({in_east} calls meanwhile in eastus)");
    assert!(
        back_after >= Duration::from_millis(policy.failback_after_ms),
        "failed back after {back_after:?}, before failback_after"
    );
    assert!(
        events(&mut rx)
            .iter()
            .any(|e| matches!(e, ClientEvent::Failback { to } if to == "westus")),
        "no failback event"
    );
    let src = Api::new(&west, &src_keys.key1);
    assert_eq!(logged(&src, &west_cid).await, 51, "the call after failback");
    assert_eq!(logged(&dst, &east_cid).await, 100 + in_east);
    eprintln!("total {:?}", t0.elapsed());
}
