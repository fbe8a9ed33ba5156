//! Text-dependent speaker verification (2021-09-05, passphrases) through real region
//! processes: the phrase list, enrollment (listed phrase, same phrase, 1–10 s of WAV), verify
//! (same voice and phrase accepted; another voice or another phrase rejected), reset, tenant
//! isolation, and replication of a passphrase profile to the paired region. The audio is
//! synthesized by the region itself (flite voices), at slightly different speaking rates so
//! that no two recordings are identical.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use tandem_testkit::FaultProxy;

const V: &str = "api-version=2021-09-05";
const PHRASE: &str = "my voice is my passport verify me";
const OTHER_PHRASE: &str = "my password is not your business";
const VOICE: &str = "en-US-SltFlite";
const IMPOSTOR: &str = "en-US-RmsFlite";
/// Speaking rates of the three enrollments and of the probe.
const ENROLL_RATES: [&str; 3] = ["100%", "90%", "110%"];
const PROBE_RATE: &str = "95%";

struct Api {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Api {
    fn new(base: &str, key: &str) -> Self {
        Self {
            http: http(),
            base: base.to_owned(),
            key: key.to_owned(),
        }
    }

    fn url(&self, rest: &str, query: &str) -> String {
        format!(
            "{}/speaker-recognition/verification/text-dependent/{rest}?{query}",
            self.base
        )
    }

    async fn tts(&self, voice: &str, rate: &str, text: &str) -> Vec<u8> {
        let r = self
            .http
            .post(format!("{}/cognitiveservices/v1", self.base))
            .header(KEY, &self.key)
            .header("Content-Type", "application/ssml+xml")
            .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
            .body(ssml(
                voice,
                &format!("<prosody rate='{rate}'>{text}</prosody>"),
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "tts");
        r.bytes().await.unwrap().to_vec()
    }

    async fn send(&self, method: Method, url: String, wav: Option<Vec<u8>>) -> reqwest::Response {
        let mut req = self.http.request(method, url).header(KEY, &self.key);
        if let Some(w) = wav {
            req = req
                .header("Content-Type", "audio/wav; codecs=audio/pcm")
                .body(w);
        }
        req.send().await.unwrap()
    }

    async fn create(&self, locale: &str) -> reqwest::Response {
        self.http
            .post(self.url("profiles", V))
            .header(KEY, &self.key)
            .json(&json!({ "locale": locale }))
            .send()
            .await
            .unwrap()
    }

    async fn create_ok(&self) -> String {
        let r = self.create("en-us").await;
        assert_eq!(r.status(), 201, "create profile");
        let location = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.contains("/text-dependent/profiles/"), "{location}");
        let v: Value = r.json().await.unwrap();
        v["profileId"].as_str().unwrap().to_owned()
    }

    async fn enroll(&self, id: &str, wav: Vec<u8>) -> reqwest::Response {
        let url = self.url(&format!("profiles/{id}/enrollments"), V);
        self.send(Method::POST, url, Some(wav)).await
    }

    async fn enroll_voice(&self, id: &str, voice: &str, phrase: &str) -> Value {
        let mut last = Value::Null;
        for rate in ENROLL_RATES {
            let r = self.enroll(id, self.tts(voice, rate, phrase).await).await;
            assert_eq!(r.status(), 201, "enrollment of {voice} at {rate}");
            last = r.json().await.unwrap();
        }
        assert_eq!(last["enrollmentStatus"], "Enrolled", "{last}");
        last
    }

    async fn verify(&self, id: &str, wav: Vec<u8>) -> reqwest::Response {
        let url = self.url(&format!("profiles/{id}:verify"), V);
        self.send(Method::POST, url, Some(wav)).await
    }

    async fn verify_ok(&self, id: &str, wav: Vec<u8>) -> Value {
        let r = self.verify(id, wav).await;
        assert_eq!(r.status(), 200, "verify");
        r.json().await.unwrap()
    }

    async fn get(&self, id: &str) -> reqwest::Response {
        self.send(Method::GET, self.url(&format!("profiles/{id}"), V), None)
            .await
    }
}

#[tokio::test]
async fn passphrase_lifecycle() {
    let west = region("westus").await;
    let k = west.create_resource("passphrases");
    let api = Api::new(&west.url, &k.key1);

    // The phrase list.
    let r = api
        .send(Method::GET, api.url("phrases/en-US", V), None)
        .await;
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    let phrases: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["passPhrase"].as_str().unwrap())
        .collect();
    assert_eq!(phrases.len(), 10, "{list}");
    assert!(phrases.contains(&PHRASE) && phrases.contains(&OTHER_PHRASE));
    let r = api
        .send(Method::GET, api.url("phrases/xx-yy", V), None)
        .await;
    let msg = assert_azure_error(r, 400).await;
    assert!(msg.contains("en-us"), "{msg}");
    let r = api
        .send(Method::GET, api.url("phrases/en-us", ""), None)
        .await;
    assert_azure_error(r, 400).await;
    let r = http()
        .get(api.url("phrases/en-us", V))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the list needs a key like every speaker route"
    );

    // Profiles.
    assert_azure_error(api.create("xx-yy").await, 400).await;
    let id = api.create_ok().await;
    let p: Value = api.get(&id).await.json().await.unwrap();
    assert_eq!(p["enrollmentStatus"], "Enrolling");
    assert_eq!(p["remainingEnrollmentsCount"], 3);
    assert!(p.get("profileStatus").is_none(), "{p}");
    assert!(p.get("remainingEnrollmentsSpeechLength").is_none(), "{p}");
    let listed: Value = api
        .send(Method::GET, api.url("profiles", V), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["profiles"].as_array().unwrap().len(), 1);
    let ti = format!(
        "{}/speaker-recognition/verification/text-independent/profiles/{id}?{V}",
        west.url
    );
    assert_azure_error(api.send(Method::GET, ti, None).await, 404).await;

    // Not enrolled yet.
    let probe = api.tts(VOICE, PROBE_RATE, PHRASE).await;
    let msg = assert_azure_error(api.verify(&id, probe.clone()).await, 400).await;
    assert!(msg.contains("not enrolled"), "{msg}");

    // Bad enrollments: none of them counts.
    let unlisted = api
        .tts(VOICE, "100%", "The birch canoe slid on the smooth planks.")
        .await;
    let msg = assert_azure_error(api.enroll(&id, unlisted).await, 400).await;
    assert!(msg.contains("passphrase"), "{msg}");
    let long = api
        .tts(
            VOICE,
            "100%",
            "My voice is my passport, verify me. The birch canoe slid on the smooth planks. \
             Glue the sheet to the dark blue background. It is easy to tell the depth of a well. \
             These days a chicken leg is a rare dish. Rice is often served in round bowls.",
        )
        .await;
    let msg = assert_azure_error(api.enroll(&id, long).await, 400).await;
    assert!(msg.contains("too long"), "{msg}");
    let msg = assert_azure_error(api.enroll(&id, silent_wav(0.5)).await, 400).await;
    assert!(msg.contains("too short"), "{msg}");
    let msg = assert_azure_error(api.enroll(&id, silent_wav(3.0)).await, 400).await;
    assert!(msg.contains("too short"), "silence: {msg}");
    assert_azure_error(api.enroll(&id, b"not a wav at all".to_vec()).await, 400).await;
    let r = api
        .http
        .post(api.url(&format!("profiles/{id}/enrollments"), V))
        .header(KEY, &api.key)
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 415).await;

    // The first enrollment fixes the passphrase; another one is refused.
    let first = api.enroll(&id, api.tts(VOICE, "100%", PHRASE).await).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["passPhrase"], PHRASE, "{first}");
    assert_eq!(first["enrollmentsCount"], 1);
    assert_eq!(first["remainingEnrollmentsCount"], 2);
    assert_eq!(first["enrollmentStatus"], "Enrolling");
    let len = first["audioLength"].as_f64().unwrap();
    let speech = first["audioSpeechLength"].as_f64().unwrap();
    assert!(
        (1.0..=10.0).contains(&len) && speech > 0.5 && speech <= len,
        "{first}"
    );
    let other = api.tts(VOICE, "100%", OTHER_PHRASE).await;
    let msg = assert_azure_error(api.enroll(&id, other.clone()).await, 400).await;
    assert!(msg.contains("same passphrase"), "{msg}");
    for rate in &ENROLL_RATES[1..] {
        let r = api.enroll(&id, api.tts(VOICE, rate, PHRASE).await).await;
        assert_eq!(r.status(), 201);
    }
    let p: Value = api.get(&id).await.json().await.unwrap();
    assert_eq!(p["enrollmentStatus"], "Enrolled", "{p}");
    assert_eq!(p["enrollmentsCount"], 3, "refused enrollments do not count");
    assert_eq!(p["remainingEnrollmentsCount"], 0);

    // Verify: the voice and the phrase must both match.
    let same = api.verify_ok(&id, probe.clone()).await;
    assert_eq!(same["recognitionResult"], "Accept", "{same}");
    let impostor = api
        .verify_ok(&id, api.tts(IMPOSTOR, PROBE_RATE, PHRASE).await)
        .await;
    assert_eq!(impostor["recognitionResult"], "Reject", "{impostor}");
    assert!(impostor["score"].as_f64().unwrap() < same["score"].as_f64().unwrap());
    let wrong_phrase = api
        .verify_ok(&id, api.tts(VOICE, PROBE_RATE, OTHER_PHRASE).await)
        .await;
    assert_eq!(
        wrong_phrase,
        json!({"recognitionResult": "Reject", "score": 0.0}),
        "a wrong phrase says nothing more"
    );
    assert_azure_error(api.verify(&id, silent_wav(12.0)).await, 400).await;

    // Another resource sees nothing.
    let k2 = west.create_resource("someone-else");
    let stranger = Api::new(&west.url, &k2.key1);
    assert_azure_error(stranger.get(&id).await, 404).await;
    assert_azure_error(stranger.verify(&id, probe.clone()).await, 404).await;
    assert_azure_error(stranger.enroll(&id, probe.clone()).await, 404).await;
    let r = stranger
        .send(
            Method::POST,
            stranger.url(&format!("profiles/{id}:reset"), V),
            None,
        )
        .await;
    assert_azure_error(r, 404).await;

    // Reset clears the enrollments and the passphrase: another phrase is welcome now.
    let r = api
        .send(
            Method::POST,
            api.url(&format!("profiles/{id}:reset"), V),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    let p: Value = api.get(&id).await.json().await.unwrap();
    assert_eq!(p["enrollmentStatus"], "Enrolling");
    assert_eq!(p["enrollmentsCount"], 0);
    assert_eq!(p["remainingEnrollmentsCount"], 3);
    assert_azure_error(api.verify(&id, probe).await, 400).await;
    let r = api.enroll(&id, other).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["passPhrase"], OTHER_PHRASE);

    // Delete.
    let r = api
        .send(Method::DELETE, api.url(&format!("profiles/{id}"), V), None)
        .await;
    assert_eq!(r.status(), 204);
    assert_azure_error(api.get(&id).await, 404).await;
}

/// Waits for `/readyz/speaker` (caught up with the pair).
async fn speaker_ready(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http().get(format!("{base}/readyz/speaker")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{base}: speaker never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pair_config(pair: &str, peer_url: &str, secret: &Path) -> Vec<String> {
    vec![
        format!("pair = \"{pair}\""),
        format!("peer_secret_file = \"{}\"", secret.display()),
        "[replication]".into(),
        "retry_base_ms = 50".into(),
        "retry_max_ms = 500".into(),
        "poll_wait_ms = 2000".into(),
        "[[peers]]".into(),
        format!("name = \"{pair}\""),
        format!("endpoint = \"{peer_url}\""),
    ]
}

#[tokio::test]
async fn a_passphrase_profile_replicates_to_the_pair() {
    let secret = tempfile::tempdir().unwrap();
    let file = secret.path().join("peer.secret");
    std::fs::write(&file, "0123456789abcdef0123456789abcdef-td-test\n").unwrap();
    let to_a = FaultProxy::start("127.0.0.1:9").await;
    let to_b = FaultProxy::start("127.0.0.1:9").await;
    let opts = |pair: &str, url: String| RegionOptions {
        extra_config: pair_config(pair, &url, &file),
        ..RegionOptions::default()
    };
    let a = RegionProcess::start(Path::new(BIN), "westus", opts("eastus", to_b.url())).await;
    to_a.set_target(&a.url);
    let b = RegionProcess::start(Path::new(BIN), "eastus", opts("westus", to_a.url())).await;
    to_b.set_target(&b.url);
    speaker_ready(&a.url).await;
    speaker_ready(&b.url).await;

    let keys = a.create_resource("contoso");
    let at_a = Api::new(&a.url, &keys.key1);
    let id = at_a.create_ok().await;
    let enrolled = at_a.enroll_voice(&id, VOICE, PHRASE).await;
    assert_eq!(enrolled["passPhrase"], PHRASE);

    // The pair serves the profile with the primary's key (as after a failover).
    let at_b = Api::new(&b.url, &keys.key1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let p = loop {
        let r = at_b.get(&id).await;
        if r.status() == 200 {
            let p: Value = r.json().await.unwrap();
            if p["enrollmentsCount"] == 3 {
                break p;
            }
        }
        assert!(Instant::now() < deadline, "never replicated");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at_home: Value = at_a.get(&id).await.json().await.unwrap();
    assert_eq!(p, at_home, "the pair holds the same profile");
    // (Synthesized at home: the pair takes the primary's key for speaker routes only.)
    let probe = at_a.tts(VOICE, PROBE_RATE, PHRASE).await;
    let v = at_b.verify_ok(&id, probe).await;
    assert_eq!(v["recognitionResult"], "Accept", "{v}");
    // The passphrase came along: another phrase is refused at the pair too.
    let other = at_a.tts(VOICE, "100%", OTHER_PHRASE).await;
    let msg = assert_azure_error(at_b.enroll(&id, other).await, 400).await;
    assert!(msg.contains("same passphrase"), "{msg}");
}
