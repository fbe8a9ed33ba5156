//! Issue #8's end-to-end proof across regions, black-box on three real `tandem serve`
//! processes: westus and eastus are peers (custom voice primary and secondary), centralus
//! serves only public voices.
//!
//! 1–4. In westus: import joe (the Piper voice playing the customer's), pass the consent,
//!    deploy, synthesize with `?deploymentId=` and check with westus's STT that the words
//!    come back.
//! 5. Copy the model to eastus (`POST /customvoice/models/{id}:copyto`, 202 +
//!    `Operation-Location`), with its consent and training set, and deploy it there under its
//!    own endpoint id. Bad copies: wrong target key, unknown model, a model whose consent did
//!    not pass, a wrong target region, no key: 4xx in Azure's error JSON.
//! 6–8. The Rust SDK with westus (custom) → eastus (custom, its own `deploymentId`) →
//!    centralus (public): kill westus and eastus answers with joe; kill eastus and the public
//!    voice answers; restart westus and, once the client fails back (its `Failback` event, no
//!    sleep), joe answers from westus again. Before the kills, westus's endpoint is suspended
//!    (`:suspend`, 202 + `Operation-Location`): eastus answers; `:resume` brings westus back.
//!
//! A real `tandem gateway` over the same three regions is called at each stage as an Azure
//! script calls a custom voice (`?deploymentId=my-joe`): its `x-tandem-voice-link` and
//! `x-tandem-region` say custom westus, then custom-secondary eastus, then public centralus.
//!
//! Which voice answered is checked twice: the region's STT hears the words, and the speaker
//! encoder (GE2E, the model the consent check uses) compares the audio with joe's own: joe
//! scores over the consent threshold, the public flite voice under it.
//!
//! Needs `tandem models pull onnxruntime piper-joe piper-joe-config`; skipped with a note
//! otherwise.

#![cfg(feature = "espeak")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::custom_speech::peer_config;
use common::custom_voice::*;
use common::*;
use serde_json::{json, Value};
use tandem_client::{
    ClientConfig, ClientEvent, Policy, RegionEntry, SynthesisRequest, TandemClient, VoiceLink,
};
use tandem_engines::models::{ModelCache, ONNXRUNTIME, PIPER_JOE, PIPER_JOE_CONFIG, SPEAKER_GE2E};
use tandem_engines::tts::piper::PiperVoice;
use tandem_engines::{Embedding, SpeakerEncoder};
use tandem_testkit::{model_dir, FaultProxy, GatewayProcess};

/// The consent check's speaker threshold (cosine of GE2E embeddings).
const SAME_VOICE: f32 = 0.75;

impl Cv {
    async fn model(&self, id: &str, consent: &str, onnx: &[u8], config: &[u8]) -> Value {
        let body = json!({"voiceName": "JoeNeural", "description": "joe", "recipe": {"kind": "Default"},
                          "projectId": "p1", "consentId": consent, "trainingSetId": "t1", "locale": "en-US"});
        json_of(self.put(&format!("/models/{id}"), body).await, 201).await;
        let upload = self.upload_model(id, onnx.to_vec(), config.to_vec()).await;
        json_of(upload, 200).await
    }
    async fn speak(&self, deployment: &str, text: &str) -> Vec<u8> {
        let format = "riff-16khz-16bit-mono-pcm";
        let resp = self
            .synthesize(deployment, ssml("JoeNeural", text), format)
            .await;
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap().to_vec()
    }
    /// Starts a copy; the operation's URL.
    async fn copy(&self, model: &str, body: Value) -> String {
        let resp = self.post(&format!("/models/{model}:copyto"), body).await;
        assert_eq!(resp.status(), 202);
        let location = resp.headers()["operation-location"]
            .to_str()
            .unwrap()
            .to_owned();
        let id = resp.headers()["operation-id"].to_str().unwrap().to_owned();
        let op: Value = resp.json().await.unwrap();
        assert_eq!(op["id"], id.as_str(), "{op}");
        assert!(
            location.starts_with(&format!("{}/customvoice/operations/{id}?", self.base)),
            "{location}"
        );
        location
    }
    /// Polls an operation until it ends (a copy of 63 MB takes seconds).
    async fn wait(&self, location: &str) -> Value {
        let started = Instant::now();
        loop {
            let resp = self
                .http
                .get(location)
                .header(KEY, &self.key)
                .send()
                .await
                .unwrap();
            let v = json_of(resp, 200).await;
            if matches!(v["status"].as_str(), Some("Succeeded" | "Failed")) {
                return v;
            }
            assert!(started.elapsed() < Duration::from_secs(180), "hangs: {v}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn embed(encoder: &SpeakerEncoder, wav: &[u8]) -> Embedding {
    encoder
        .embed(&tandem_audio::decode_wav(wav).unwrap())
        .unwrap()
}

/// Every path under `dir`.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// Waits for the client's `Failback` to `region` (the prober decides it; no sleep here).
async fn failback(rx: &mut tokio::sync::broadcast::Receiver<ClientEvent>, region: &str) {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(ClientEvent::Failback { to }) if to == region => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("client events: {e}"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .unwrap_or_else(|_| panic!("the client never failed back to {region}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_copied_custom_voice_takes_over_then_the_public_voice_then_joe_comes_back() {
    let t0 = Instant::now();
    let cache = ModelCache::new(model_dir());
    let (Ok(_), Ok(onnx_path), Ok(json_path), Ok(ge2e)) = (
        cache.model_path(ONNXRUNTIME),
        cache.model_path(PIPER_JOE),
        cache.model_path(PIPER_JOE_CONFIG),
        cache.model_path(SPEAKER_GE2E),
    ) else {
        eprintln!(
            "skipped: the Piper voice is not installed in {}; run `tandem models pull \
             onnxruntime piper-joe piper-joe-config`",
            model_dir().display()
        );
        return;
    };
    let joe = PiperVoice::load_with(&onnx_path, &json_path, &model_dir(), 1).unwrap();
    let encoder = SpeakerEncoder::load(&ge2e).unwrap();
    let onnx = std::fs::read(&onnx_path).unwrap();
    let config = std::fs::read(&json_path).unwrap();
    let training: Vec<(&str, &str, Vec<u8>)> = TRAINING
        .iter()
        .map(|(id, text)| (*id, *text, wav(&joe, text)))
        .collect();
    let mut reference = Vec::new();
    for (_, _, w) in &training {
        reference.extend(tandem_audio::decode_wav(w).unwrap().samples);
    }
    let joe_print = encoder
        .embed(&tandem_audio::Pcm {
            sample_rate: joe.sample_rate(),
            samples: reference,
        })
        .unwrap();
    let similarity = |wav: &[u8]| embed(&encoder, wav).cosine(&joe_print);

    // Three regions; westus and eastus are peers, behind proxies so that a restarted westus
    // keeps its address.
    let secret = tempfile::tempdir().unwrap();
    let file = secret.path().join("peer.secret");
    std::fs::write(&file, "5e1f0a2b3c4d5e6f708192a3b4c5d6e7-voice-failover\n").unwrap();
    let to_west = FaultProxy::start("127.0.0.1:9").await;
    let to_east = FaultProxy::start("127.0.0.1:9").await;
    let opts = |peer: &str, url: String| RegionOptions {
        extra_config: peer_config(peer, &url, &file),
        ..RegionOptions::default()
    };
    let (mut west, mut east, central) = tokio::join!(
        RegionProcess::start(Path::new(BIN), "westus", opts("eastus", to_east.url())),
        RegionProcess::start(Path::new(BIN), "eastus", opts("westus", to_west.url())),
        region("centralus"),
    );
    to_west.set_target(&west.url);
    to_east.set_target(&east.url);
    let src_keys = west.create_resource("voices");
    let dst_keys = east.create_resource("voices-dr");
    let pub_key = central.create_resource("public").key1;
    let src = Cv::new(&west, &src_keys.key1);
    let dst = Cv::new(&east, &dst_keys.key1);
    eprintln!("three regions up after {:?}", t0.elapsed());

    // 1–3. Import joe, pass the consent, deploy (westus).
    json_of(
        src.put(
            "/projects/p1",
            json!({"description": "Joe", "kind": "ProfessionalVoice"}),
        )
        .await,
        201,
    )
    .await;
    let c = json_of(src.consent("c1", wav(&joe, &statement())).await, 201).await;
    assert_eq!(c["status"], "Succeeded", "{c}");
    let wrong = wav(
        &joe,
        "I am happy to read this sentence about the weather today.",
    );
    let c = json_of(src.consent("c-wrong", wrong).await, 201).await;
    assert_eq!(c["status"], "Failed", "{c}");
    json_of(
        src.put(
            "/trainingsets/t1",
            json!({"description": "joe", "locale": "en-US", "projectId": "p1"}),
        )
        .await,
        201,
    )
    .await;
    let script: String = TRAINING
        .iter()
        .map(|(i, t)| format!("{i}\t{t}\n"))
        .collect();
    let mut form = reqwest::multipart::Form::new().part(
        "script",
        reqwest::multipart::Part::bytes(script.into_bytes()).file_name("script.txt"),
    );
    for (id, _, w) in &training {
        form = form.part(
            "audiodata",
            reqwest::multipart::Part::bytes(w.clone()).file_name(format!("{id}.wav")),
        );
    }
    json_of(src.form("/trainingsets/t1:upload", form).await, 202).await;
    let m = src.model("m1", "c1", &onnx, &config).await;
    assert_eq!(m["properties"]["consentCheck"]["passed"], true, "{m}");
    let bad = src.model("m-wrong", "c-wrong", &onnx, &config).await;
    assert_eq!(bad["properties"]["consentCheck"]["passed"], false, "{bad}");
    json_of(
        src.put(
            "/endpoints/e-west",
            json!({"description": "joe", "projectId": "p1", "modelId": "m1"}),
        )
        .await,
        201,
    )
    .await;

    // 4. Synthesize; westus's STT hears the words; the voice is joe's.
    let sentence = "The heart pumps blood through the body.";
    let audio = src.speak("e-west", sentence).await;
    let heard = src.transcribe(audio.clone()).await;
    eprintln!("westus, e-west: heard {heard:?}");
    assert!(wer(sentence, &heard) <= 0.25, "{heard:?}");
    assert!(similarity(&audio) >= SAME_VOICE, "{}", similarity(&audio));

    // Bad copies, refused before any operation exists.
    let to_dst = json!({"targetSubscriptionKey": dst_keys.key1, "targetRegion": "eastus"});
    let msg = azure_error(
        src.post(
            "/models/m1:copyto",
            json!({"targetSubscriptionKey": "0123456789abcdef0123456789abcdef"}),
        )
        .await,
        400,
        "SubscriptionNotFound",
    )
    .await;
    assert!(!msg.contains("0123456789abcdef"), "the key leaked: {msg}");
    azure_error(
        src.post("/models/nope:copyto", to_dst.clone()).await,
        404,
        "NotFound",
    )
    .await;
    let msg = azure_error(
        src.post("/models/m-wrong:copyto", to_dst.clone()).await,
        400,
        "DeployNotAllowed",
    )
    .await;
    assert!(msg.contains("consent"), "{msg}");
    azure_error(
        src.post(
            "/models/m1:copyto",
            json!({"targetSubscriptionKey": dst_keys.key1, "targetRegion": "centralus"}),
        )
        .await,
        400,
        "InvalidParameterValue",
    )
    .await;
    azure_error(
        src.post("/models/m1:copyto", json!({})).await,
        400,
        "InvalidParameterValue",
    )
    .await;
    let no_version = src
        .http
        .post(format!("{}/customvoice/models/m1:copyto", src.base))
        .header(KEY, &src.key)
        .json(&to_dst)
        .send()
        .await
        .unwrap();
    assert_azure_error(no_version, 400).await;
    // Nothing of the voice reached eastus.
    for coll in ["models", "consents", "trainingsets", "projects"] {
        let list = json_of(dst.get(&format!("/{coll}")).await, 200).await;
        assert_eq!(list["value"], json!([]), "{coll}: {list}");
    }

    // 5. Copy to eastus: an operation, with the voice's consent and training set.
    let t = Instant::now();
    let location = src.copy("m1", to_dst.clone()).await;
    let op = src.wait(&location).await;
    let copy_secs = t.elapsed().as_secs_f64();
    eprintln!("copied in {copy_secs:.2} s: {op}");
    assert_eq!(op["status"], "Succeeded", "{op}");
    assert_eq!(op["properties"]["modelId"], "m1", "{op}");
    assert!(op["resourceLocation"]
        .as_str()
        .unwrap()
        .ends_with("/customvoice/models/m1"));
    // Another resource cannot read the operation.
    let stranger = Cv::new(&west, &west.create_resource("stranger").key1);
    let resp = stranger
        .http
        .get(&location)
        .header(KEY, &stranger.key)
        .send()
        .await
        .unwrap();
    assert_azure_error(resp, 404).await;

    let m = json_of(dst.get("/models/m1").await, 200).await;
    eprintln!("eastus m1: {m}");
    assert_eq!(m["status"], "Succeeded");
    assert_eq!(m["voiceName"], "JoeNeural");
    assert_eq!(m["consentId"], "c1");
    assert_eq!(m["trainingSetId"], "t1");
    assert_eq!(m["properties"]["copiedFrom"]["region"], "westus");
    assert_eq!(m["properties"]["consentCheck"]["passed"], true);
    assert!(
        m["properties"]["validation"]["voicedSeconds"]
            .as_f64()
            .unwrap()
            > 0.5
    );
    let consent = json_of(dst.get("/consents/c1").await, 200).await;
    assert_eq!(consent["status"], "Succeeded", "{consent}");
    assert_eq!(consent["properties"]["passed"], true);
    assert!(consent["properties"]["textScore"].as_f64().unwrap() >= 0.6);
    assert!(consent["properties"]["transcript"].is_string());
    let set = json_of(dst.get("/trainingsets/t1").await, 200).await;
    assert_eq!(set["properties"]["utteranceCount"], 3, "{set}");
    json_of(dst.get("/projects/p1").await, 200).await;
    // The blobs came along: consent audio and the three utterances, byte for byte.
    let east_files = files_under(&east.data_dir());
    assert!(
        east_files.iter().all(|f| !f.contains("/staging/")),
        "staging left behind: {east_files:?}"
    );
    let wavs: Vec<Vec<u8>> = east_files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .filter(|b| b.starts_with(b"RIFF"))
        .collect();
    for (id, _, w) in &training {
        assert!(wavs.contains(w), "utterance {id} is not in eastus");
    }
    // Copying again is the same copy: the model and its dependants are not duplicated.
    let again = src.wait(&src.copy("m1", to_dst.clone()).await).await;
    assert_eq!(again["status"], "Succeeded", "{again}");
    for coll in ["models", "consents", "trainingsets", "projects"] {
        let list = json_of(dst.get(&format!("/{coll}")).await, 200).await;
        assert_eq!(list["value"].as_array().unwrap().len(), 1, "{coll}: {list}");
    }

    // Deploy in eastus under its own endpoint id; eastus's STT hears the words.
    json_of(
        dst.put(
            "/endpoints/e-east",
            json!({"description": "joe (DR)", "projectId": "p1", "modelId": "m1"}),
        )
        .await,
        201,
    )
    .await;
    let audio = dst.speak("e-east", sentence).await;
    let heard = dst.transcribe(audio.clone()).await;
    eprintln!("eastus, e-east: heard {heard:?}");
    assert!(wer(sentence, &heard) <= 0.25, "{heard:?}");
    assert!(similarity(&audio) >= SAME_VOICE, "{}", similarity(&audio));
    eprintln!("copied and deployed after {:?}", t0.elapsed());

    // 6–8. The SDK: westus's custom voice, then eastus's, then the public voice of centralus.
    let entry = |name: &str, endpoint: String, key: &str, deployment: Option<&str>| RegionEntry {
        name: name.into(),
        endpoints: vec![endpoint],
        key: Some(key.into()),
        key_file: None,
        cid: None,
        voice_deployment_id: deployment.map(str::to_owned),
    };
    let policy = Policy {
        tts_timeout_ms: 30_000,
        probe_interval_ms: 100,
        breaker_consecutive_failures: 1,
        breaker_open_base_ms: 300,
        breaker_open_max_ms: 600,
        failback_after_ms: 1_500,
        discovery: false,
        ..Policy::default()
    };
    let config = ClientConfig {
        regions: vec![
            entry("westus", to_west.url(), &src_keys.key1, Some("e-west")),
            entry("eastus", east.url.clone(), &dst_keys.key1, Some("e-east")),
            entry("centralus", central.url.clone(), &pub_key, None),
        ],
        policy,
        gateway_key: None,
        gateway_key_file: None,
    };
    let client = TandemClient::new(config.clone()).unwrap();
    let mut rx = client.subscribe();
    // The same regions behind a real `tandem gateway`, called as an Azure script calls a custom
    // voice (`?deploymentId=`, whatever its value: each region is sent its own).
    let regions_file = secret.path().join("regions.toml");
    std::fs::write(&regions_file, toml::to_string(&config).unwrap()).unwrap();
    let gateway = GatewayProcess::start(Path::new(BIN), &regions_file);
    let stt = Cv::new(&central, &pub_key);
    let request = |text: &str| SynthesisRequest {
        ssml: ssml("JoeNeural", text),
        output_format: "riff-16khz-16bit-mono-pcm".into(),
        prefer_custom_voice: true,
    };
    // Each answer: the link, the words (centralus's STT, alive throughout), the voice.
    let check = |text: &'static str| {
        let (client, stt) = (&client, &stt);
        async move {
            let a = client.synthesize(&request(text)).await.unwrap();
            let audio = a.value.audio.to_vec();
            let heard = stt.transcribe(audio.clone()).await;
            let score = similarity(&audio);
            eprintln!(
                "{:?} (attempts {}, failovers {}): {heard:?}, joe similarity {score:.3}",
                a.value.link, a.attempts, a.failovers
            );
            assert!(wer(text, &heard) <= 0.25, "{:?}: {heard:?}", a.value.link);
            (a.value.link, score)
        }
    };
    let custom = |r: &str| VoiceLink::Custom { region: r.into() };
    // Through the gateway: the link and region it names, and whose voice it is.
    let via_gateway = |text: &'static str, link: &'static str, region: &'static str| {
        let (gateway, stt) = (&gateway, &stt);
        async move {
            let resp = http()
                .post(format!(
                    "{}/cognitiveservices/v1?deploymentId=my-joe",
                    gateway.url
                ))
                .header("Content-Type", "application/ssml+xml")
                .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
                .body(ssml("JoeNeural", text))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            let header = |n: &str| resp.headers()[n].to_str().unwrap().to_owned();
            assert_eq!(
                (header("x-tandem-voice-link"), header("x-tandem-region")),
                (link.to_owned(), region.to_owned())
            );
            let audio = resp.bytes().await.unwrap().to_vec();
            let heard = stt.transcribe(audio.clone()).await;
            assert!(wer(text, &heard) <= 0.25, "gateway, {link}: {heard:?}");
            similarity(&audio)
        }
    };
    let (link, score) = check("The heart pumps blood through the body.").await;
    assert_eq!(link, custom("westus"));
    assert!(score >= SAME_VOICE, "{score}");
    let score = via_gateway("The lungs take in air.", "custom", "westus").await;
    assert!(score >= SAME_VOICE, "{score}");

    // Suspending westus's endpoint (Azure's `:suspend`, 202 + Operation-Location) takes its
    // voice out of service: it shows Disabled, refuses to speak, and the chain moves on to
    // eastus's copy; `:resume` brings it back.
    let action = |verb: &str, op: &str| {
        src.http
            .post(src.url(&format!("/endpoints/e-west:{verb}")))
            .header(KEY, &src.key)
            .header("Operation-Id", op)
            .send()
    };
    let resp = action("suspend", "suspend-1").await.unwrap();
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["operation-location"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        location.contains("/customvoice/operations/suspend-1?"),
        "{location}"
    );
    assert_eq!(resp.headers()["operation-id"], "suspend-1");
    let e = json_of(resp, 202).await;
    assert_eq!(e["status"], "Disabled", "{e}");
    let op = json_of(
        src.http
            .get(&location)
            .header(KEY, &src.key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(
        (op["status"].as_str(), op["kind"].as_str()),
        (Some("Succeeded"), Some("EndpointSuspend")),
        "{op}"
    );
    assert_eq!(
        json_of(src.get("/endpoints/e-west").await, 200).await["status"],
        "Disabled"
    );
    azure_error(
        action("suspend", "suspend-1").await.unwrap(),
        409,
        "Conflict",
    )
    .await;
    let direct = src
        .http
        .post(format!(
            "{}/cognitiveservices/v1?deploymentId=e-west",
            src.base
        ))
        .header(KEY, &src.key)
        .header("Content-Type", "application/ssml+xml")
        .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
        .body(ssml("JoeNeural", sentence))
        .send()
        .await
        .unwrap();
    azure_error(direct, 400, "EndpointSuspended").await;
    let (link, score) = check("The stomach breaks down the food we eat into small pieces.").await;
    assert_eq!(
        link,
        VoiceLink::CustomSecondary {
            region: "eastus".into()
        }
    );
    assert!(score >= SAME_VOICE, "{score}");
    let resp = action("resume", "resume-1").await.unwrap();
    let e = json_of(resp, 202).await;
    assert_eq!(e["status"], "Succeeded", "{e}");
    let (link, _) = check("The kidneys filter the blood and remove the waste.").await;
    assert_eq!(link, custom("westus"));

    // 6. westus dies: the secondary's custom voice answers, in joe's voice.
    west.kill9();
    for text in [
        "Red blood cells carry oxygen to every part of the body.",
        "The liver cleans the blood and stores energy for later.",
    ] {
        let (link, score) = check(text).await;
        assert_eq!(
            link,
            VoiceLink::CustomSecondary {
                region: "eastus".into()
            }
        );
        assert!(score >= SAME_VOICE, "{score}");
    }
    let score = via_gateway("The skin protects the body.", "custom-secondary", "eastus").await;
    assert!(score >= SAME_VOICE, "{score}");

    // 7. eastus dies too: the public voice answers (not joe), also once both breakers are open.
    east.kill9();
    let mut public_scores = Vec::new();
    for text in [
        "The brain sends signals through the nerves to the muscles.",
        "Bones and muscles work together to move the body.",
    ] {
        let (link, score) = check(text).await;
        assert_eq!(
            link,
            VoiceLink::Public {
                region: "centralus".into()
            }
        );
        assert!(
            score < SAME_VOICE,
            "the public voice sounds like joe: {score}"
        );
        public_scores.push(score);
    }
    let score = via_gateway("The eyes let us see the world.", "public", "centralus").await;
    assert!(
        score < SAME_VOICE,
        "the gateway's public voice sounds like joe: {score}"
    );

    // 8. westus comes back (same address, same data): after the client fails back, joe again.
    west.restart().await;
    to_west.set_target(&west.url);
    failback(&mut rx, "westus").await;
    let (link, score) = check("The heart pumps blood through the body.").await;
    assert_eq!(link, custom("westus"));
    assert!(score >= SAME_VOICE, "{score}");
    assert!(public_scores.iter().all(|p| *p < score));
    eprintln!("total {:?}", t0.elapsed());
}
