//! Paired regions for speaker recognition, through real region processes: continuous
//! replication, automatic failover of a client that knows only the primary, failback after the
//! primary caught up, and a partition with writes on both sides that heals into identical
//! replicas. Regions reach each other (and the client reaches the primary) through
//! `FaultProxy`s, so a restarted region keeps its address and a partition is one switch.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{json, Value};
use tandem_client::{CallKind, ClientConfig, ForwardRequest, TandemClient};
use tandem_testkit::{Fault, FaultProxy};

const V: &str = "api-version=2021-09-05";
const VOICE: &str = "en-US-SltFlite";
const OTHER_VOICE: &str = "en-US-RmsFlite";
/// Two long texts: about 24 s of speech, enough for `Enrolled`.
const ENROL: [&str; 2] = [
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. \
     It is easy to tell the depth of a well. These days a chicken leg is a rare dish. \
     Rice is often served in round bowls. The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage. \
     Four hours of steady work faced us. A large size in stockings is hard to sell. \
     The boy was there when the sun rose. A rod is used to catch pink salmon.",
];
const MORE: &str = "The source of the huge river is the clear spring. Kick the ball straight \
     and follow through. Help the woman get back to her feet.";
const PROBE: &str = "The salt breeze came across from the sea. The girl at the booth sold \
     fifty bonds. The small pup gnawed a hole in the sock.";

/// Two paired regions, each reached by the other through a proxy.
struct Pair {
    a: RegionProcess,
    b: RegionProcess,
    /// In front of A: B's link to A, and the client's way to A.
    to_a: FaultProxy,
    /// In front of B: A's link to B.
    to_b: FaultProxy,
    _secret: tempfile::TempDir,
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

impl Pair {
    async fn start() -> Pair {
        let secret = tempfile::tempdir().unwrap();
        let file = secret.path().join("peer.secret");
        std::fs::write(&file, "f0e1d2c3b4a5968778695a4b3c2d1e0f-test-federation\n").unwrap();
        // Targets are set once the regions are up (they listen on port 0).
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
        let pair = Pair {
            a,
            b,
            to_a,
            to_b,
            _secret: secret,
        };
        speaker_ready(&pair.a.url).await;
        speaker_ready(&pair.b.url).await;
        pair
    }
}

/// Waits for `/readyz/speaker` (caught up with the pair).
async fn speaker_ready(base: &str) {
    let http = http();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz/speaker")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{base}: speaker never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The admin view of replication (state, cursor, digest).
async fn replication(r: &RegionProcess) -> Value {
    let resp = http()
        .get(format!("{}/admin/v1/replication", r.url))
        .bearer_auth(&r.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// Waits until both regions hold the same speaker data; returns the digest.
async fn converged(a: &RegionProcess, b: &RegionProcess) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (da, db) = (
            replication(a).await["digest"].clone(),
            replication(b).await["digest"].clone(),
        );
        if da == db {
            return da;
        }
        assert!(Instant::now() < deadline, "never converged:\n{da}\n{db}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Direct calls to one region with one key.
struct Api {
    base: String,
    key: String,
}

impl Api {
    fn new(base: &str, key: &str) -> Self {
        Api {
            base: base.into(),
            key: key.into(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        let mut req = http()
            .request(method, format!("{}{path}", self.base))
            .header(KEY, &self.key);
        if let Some(b) = body {
            req = req.header("Content-Type", "audio/wav").body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn tts(&self, voice: &str, text: &str) -> Vec<u8> {
        let r = http()
            .post(format!("{}/cognitiveservices/v1", self.base))
            .header(KEY, &self.key)
            .header("Content-Type", "application/ssml+xml")
            .header("X-Microsoft-OutputFormat", "riff-16khz-16bit-mono-pcm")
            .body(ssml(voice, text))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "tts");
        r.bytes().await.unwrap().to_vec()
    }

    async fn create(&self) -> String {
        let r = http()
            .post(format!(
                "{}/speaker-recognition/verification/text-independent/profiles?{V}",
                self.base
            ))
            .header(KEY, &self.key)
            .json(&json!({"locale": "en-us"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        v["profileId"].as_str().unwrap().to_owned()
    }

    async fn enroll(&self, id: &str, wav: &[u8]) -> (u16, Value) {
        let path = format!(
            "/speaker-recognition/verification/text-independent/profiles/{id}/enrollments?{V}"
        );
        self.call(Method::POST, &path, Some(wav.to_vec())).await
    }

    async fn verify(&self, id: &str, wav: &[u8]) -> (u16, Value) {
        self.call(Method::POST, &verify_path(id), Some(wav.to_vec()))
            .await
    }

    async fn profile(&self, id: &str) -> (u16, Value) {
        let path = format!("/speaker-recognition/verification/text-independent/profiles/{id}?{V}");
        self.call(Method::GET, &path, None).await
    }
}

/// A client that knows only `westus`, at `endpoint`, with fast breakers for the test.
fn client_for(endpoint: &str, key: &str) -> TandemClient {
    let cfg: ClientConfig = toml_cfg(&format!(
        "[[regions]]\nname = \"westus\"\nendpoint = \"{endpoint}\"\nkey = \"{key}\"\n\n[policy]\nprobe_interval_ms = 100\nfailback_after_ms = 1000\nbreaker_open_base_ms = 200\nbreaker_open_max_ms = 1000\nbackoff_base_ms = 10\nbackoff_cap_ms = 50\nspeaker_timeout_ms = 20000\n"
    ));
    TandemClient::new(cfg).unwrap()
}

fn toml_cfg(text: &str) -> ClientConfig {
    ClientConfig::from_toml(text).unwrap()
}

/// A speaker call through the client; returns (status, body, answering region).
async fn through(
    client: &TandemClient,
    method: Method,
    path: &str,
    wav: Option<&[u8]>,
) -> (u16, Value, String) {
    let mut headers = HeaderMap::new();
    let body = match wav {
        Some(w) => {
            headers.insert("content-type", HeaderValue::from_static("audio/wav"));
            Bytes::copy_from_slice(w)
        }
        None => {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            Bytes::from_static(br#"{"locale":"en-us"}"#)
        }
    };
    let answered = client
        .forward(
            CallKind::Speaker,
            ForwardRequest {
                method,
                path_and_query: path.to_owned(),
                headers,
                body,
            },
        )
        .await
        .expect("the client reached a region");
    let v = serde_json::from_slice(&answered.value.body).unwrap_or(Value::Null);
    (answered.value.status.as_u16(), v, answered.region)
}

fn profiles_path() -> String {
    format!("/speaker-recognition/verification/text-independent/profiles?{V}")
}
fn enroll_path(id: &str) -> String {
    format!("/speaker-recognition/verification/text-independent/profiles/{id}/enrollments?{V}")
}
fn verify_path(id: &str) -> String {
    format!("/speaker-recognition/verification/text-independent/profiles/{id}:verify?{V}&ignoreMinLength=true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_primary_fail_over_enrol_at_the_pair_fail_back_and_lose_nothing() {
    let mut pair = Pair::start().await;
    let keys = pair.a.create_resource("contoso");
    let at_a = Api::new(&pair.a.url, &keys.key1);
    let enrol: Vec<Vec<u8>> = futures::future::join_all(ENROL.map(|t| at_a.tts(VOICE, t))).await;
    let more = at_a.tts(VOICE, MORE).await;
    let probe = at_a.tts(VOICE, PROBE).await;
    let impostor = at_a.tts(OTHER_VOICE, PROBE).await;

    // 1. Enrol in A, through a client that knows only A.
    let client = client_for(&pair.to_a.url(), &keys.key1);
    let (status, created, region) = through(&client, Method::POST, &profiles_path(), None).await;
    assert_eq!((status, region.as_str()), (201, "westus"));
    let p = created["profileId"].as_str().unwrap().to_owned();
    for wav in &enrol {
        let (status, _, region) = through(&client, Method::POST, &enroll_path(&p), Some(wav)).await;
        assert_eq!((status, region.as_str()), (201, "westus"));
    }
    let (_, v, _) = through(&client, Method::POST, &verify_path(&p), Some(&probe)).await;
    assert_eq!(v["recognitionResult"], "Accept");
    let before = converged(&pair.a, &pair.b).await;
    assert_eq!(before["liveEnrollments"], 2);

    // 2. kill -9 A.
    pair.a.kill9();

    // 3. The same client, same config, keeps verifying: served by B with A's key.
    let (status, v, region) = through(&client, Method::POST, &verify_path(&p), Some(&probe)).await;
    assert_eq!((status, region.as_str()), (200, "eastus"), "{v}");
    assert_eq!(v["recognitionResult"], "Accept");
    let (_, v, _) = through(&client, Method::POST, &verify_path(&p), Some(&impostor)).await;
    assert_eq!(v["recognitionResult"], "Reject");

    // 4. Enrol more at B: a new enrollment of P and a new profile Q.
    let (status, v, region) = through(&client, Method::POST, &enroll_path(&p), Some(&more)).await;
    assert_eq!((status, region.as_str()), (201, "eastus"), "{v}");
    assert_eq!(v["enrollmentsCount"], 3);
    let (status, created, _) = through(&client, Method::POST, &profiles_path(), None).await;
    assert_eq!(status, 201);
    let q = created["profileId"].as_str().unwrap().to_owned();
    for wav in &enrol {
        let (status, _, region) = through(&client, Method::POST, &enroll_path(&q), Some(wav)).await;
        assert_eq!((status, region.as_str()), (201, "eastus"));
    }

    // 5. Restart A: it catches up with B before it takes speaker traffic back.
    pair.a.restart().await;
    pair.to_a.set_target(&pair.a.url);
    speaker_ready(&pair.a.url).await;
    let log = pair.a.log();
    assert!(log.contains("caught up with the pair"), "{log}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v, region) =
            through(&client, Method::POST, &verify_path(&q), Some(&probe)).await;
        assert_eq!(status, 200, "{v}");
        if region == "westus" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the client never failed back to westus"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 6. Identical profiles and enrollments in both, and identical answers.
    let after = converged(&pair.a, &pair.b).await;
    assert_eq!(after["liveEnrollments"], 5, "{after}");
    assert_eq!(after["liveProfiles"], 2, "{after}");
    let at_b = Api::new(&pair.b.url, &keys.key1);
    let at_a = Api::new(&pair.a.url, &keys.key1);
    for id in [&p, &q] {
        let (sa, pa) = at_a.profile(id).await;
        let (sb, pb) = at_b.profile(id).await;
        assert_eq!((sa, sb), (200, 200));
        assert_eq!(pa, pb, "profile {id} differs");
        let (_, va) = at_a.verify(id, &probe).await;
        let (_, vb) = at_b.verify(id, &probe).await;
        assert_eq!(va, vb, "verify {id} differs");
        assert_eq!(va["recognitionResult"], "Accept", "{va}");
    }
    let (_, pa) = at_a.profile(&p).await;
    assert_eq!(pa["enrollmentsCount"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_with_writes_on_both_sides_heals_into_identical_replicas() {
    let pair = Pair::start().await;
    let keys = pair.a.create_resource("fabrikam");
    let at_a = Api::new(&pair.a.url, &keys.key1);
    let at_b = Api::new(&pair.b.url, &keys.key1);
    let enrol: Vec<Vec<u8>> = futures::future::join_all(ENROL.map(|t| at_a.tts(VOICE, t))).await;
    let more = at_a.tts(VOICE, MORE).await;
    let probe = at_a.tts(VOICE, PROBE).await;

    let p = at_a.create().await;
    let s = at_a.create().await;
    for wav in &enrol {
        assert_eq!(at_a.enroll(&p, wav).await.0, 201);
    }
    assert_eq!(at_a.enroll(&s, &more).await.0, 201);
    converged(&pair.a, &pair.b).await;

    // Partition: both alive, the links between them refused.
    pair.to_a.set(Fault::Refuse).await;
    pair.to_b.set(Fault::Refuse).await;

    // A: enrol P once more, enrol S, create R.
    assert_eq!(at_a.enroll(&p, &more).await.0, 201);
    assert_eq!(at_a.enroll(&s, &more).await.0, 201);
    let r = at_a.create().await;
    assert_eq!(at_a.enroll(&r, &more).await.0, 201);
    // B (with A's key): reset P after A's enrollment, then enrol it again; delete S.
    let reset =
        format!("/speaker-recognition/verification/text-independent/profiles/{p}:reset?{V}");
    assert_eq!(at_b.call(Method::POST, &reset, None).await.0, 204);
    for wav in &enrol {
        assert_eq!(at_b.enroll(&p, wav).await.0, 201);
    }
    let del = format!("/speaker-recognition/verification/text-independent/profiles/{s}?{V}");
    assert_eq!(at_b.call(Method::DELETE, &del, None).await.0, 204);
    // While partitioned, each side serves its own view.
    assert_eq!(at_a.profile(&s).await.0, 200);
    assert_eq!(at_b.profile(&s).await.0, 404);
    assert_eq!(at_b.profile(&r).await.0, 404);

    // Heal.
    pair.to_a.set(Fault::None).await;
    pair.to_b.set(Fault::None).await;
    let digest = converged(&pair.a, &pair.b).await;

    // The merge rules: the reset removed what was enrolled before it (A's too), kept what came
    // after; the delete won over A's concurrent enrollment; R (made at A) is now at B.
    for api in [&at_a, &at_b] {
        let (status, pv) = api.profile(&p).await;
        assert_eq!(status, 200);
        assert_eq!(pv["enrollmentsCount"], 2, "{pv}");
        assert_eq!(pv["enrollmentStatus"], "Enrolled");
        assert_eq!(api.profile(&s).await.0, 404);
        let (status, rv) = api.profile(&r).await;
        assert_eq!((status, rv["enrollmentsCount"].clone()), (200, json!(1)));
    }
    assert_eq!(digest["liveProfiles"], 2, "{digest}");
    assert_eq!(digest["liveEnrollments"], 3, "{digest}");
    // Nothing was physically lost: every enrollment ever made is still a row (tombstoned or
    // live): 2 + 1 before, 1 + 1 + 1 at A, 2 at B during the partition.
    assert_eq!(digest["enrollments"], 8, "{digest}");
    let (_, va) = at_a.verify(&p, &probe).await;
    let (_, vb) = at_b.verify(&p, &probe).await;
    assert_eq!(va, vb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pair_takes_the_primarys_keys_for_speaker_data_only_and_checks_everything() {
    let pair = Pair::start().await;
    let a_keys = pair.a.create_resource("contoso");
    let b_keys = pair.b.create_resource("local-to-b");
    let at_a = Api::new(&pair.a.url, &a_keys.key1);
    let p = at_a.create().await;
    converged(&pair.a, &pair.b).await;
    let a_key_at_b = Api::new(&pair.b.url, &a_keys.key1);
    let b_key_at_b = Api::new(&pair.b.url, &b_keys.key1);

    // A's key reads A's profile at B, but works nowhere else at B.
    assert_eq!(a_key_at_b.profile(&p).await.0, 200);
    let http = http();
    let sts = http
        .post(format!("{}/sts/v1.0/issueToken", pair.b.url))
        .header(KEY, &a_keys.key1)
        .send()
        .await
        .unwrap();
    assert_azure_error(sts, 401).await;
    let stt = http
        .post(stt_url(&pair.b.url, "language=en-US"))
        .header(KEY, &a_keys.key1)
        .header("Content-Type", "audio/wav")
        .body(silent_wav(1.0))
        .send()
        .await
        .unwrap();
    assert_azure_error(stt, 401).await;

    // Tenants stay apart: B's own resource cannot see A's profile, an unknown profile is 404.
    assert_eq!(b_key_at_b.profile(&p).await.0, 404);
    let unknown = "3f8e9c1a-0000-4000-8000-000000000000";
    assert_eq!(a_key_at_b.profile(unknown).await.0, 404);
    // Bad audio at the pair: too short, not a WAV.
    let short = b_key_at_b.tts(VOICE, "Hi.").await;
    let (status, v) = a_key_at_b.enroll(&p, &short).await;
    assert_eq!(status, 400, "{v}");
    let (status, v) = a_key_at_b.enroll(&p, b"definitely not a wav file").await;
    assert!(status == 400 || status == 415, "{status} {v}");
    // Nothing of that reached A.
    converged(&pair.a, &pair.b).await;
    assert_eq!(at_a.profile(&p).await.1["enrollmentsCount"], 0);

    // The replication route wants a signed request from a peer.
    let pull = format!("{}/internal/v1/replication/speaker?after=0", pair.b.url);
    let r = http.get(&pull).send().await.unwrap();
    assert_azure_error(r, 403).await;
    let r = http
        .get(&pull)
        .header("x-tandem-peer", "westus")
        .header("x-tandem-peer-time", "0")
        .header("x-tandem-peer-signature", "00")
        .send()
        .await
        .unwrap();
    assert_azure_error(r, 403).await;

    // Discovery names the pair.
    let d: Value = http
        .get(format!("{}/.well-known/tandem", pair.a.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["region"], "westus");
    assert_eq!(d["pair"]["region"], "eastus");
    assert_eq!(d["pair"]["endpoint"], pair.to_b.url());
    assert_eq!(d["services"]["speaker"]["state"], "serving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_configured_with_the_primary_only_fails_speaker_calls_over_to_the_pair() {
    let mut pair = Pair::start().await;
    let keys = pair.a.create_resource("contoso");
    let at_a = Api::new(&pair.a.url, &keys.key1);
    let p = at_a.create().await;
    for text in ENROL {
        assert_eq!(at_a.enroll(&p, &at_a.tts(VOICE, text).await).await.0, 201);
    }
    let probe = at_a.tts(VOICE, PROBE).await;
    converged(&pair.a, &pair.b).await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            "gateway_key = \"gw-key\"\n[[regions]]\nname = \"westus\"\nendpoint = \"{}\"\nkey = \"{}\"\n",
            pair.to_a.url(),
            keys.key1
        ),
    )
    .unwrap();
    let gateway = tandem_testkit::GatewayProcess::start(Path::new(BIN), &file);
    let through_gw = Api::new(&gateway.url, "gw-key");
    let verify = |api: &Api| {
        let url = format!("{}{}", api.base, verify_path(&p));
        http()
            .post(url)
            .header(KEY, &api.key)
            .header("Content-Type", "audio/wav")
            .body(probe.clone())
            .send()
    };
    // Discovery happens in the background when the gateway starts: wait until it knows.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: Value = http()
            .get(format!("{}/status", gateway.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status.to_string().contains("eastus") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never learned the pair: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = verify(&through_gw).await.unwrap();
    assert_eq!(r.headers()["x-tandem-region"], "westus");

    pair.a.kill9();
    let r = verify(&through_gw).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-tandem-region"], "eastus");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["recognitionResult"], "Accept", "{v}");
}
