//! The load generator: calls started at a fixed rate through the failover SDK, at most
//! `concurrency` in flight, each one recorded as a [`Sample`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tandem_client::{
    CallKind, ClientError, ForwardRequest, RecognizeOptions, SynthesisRequest, TandemClient,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::scenario::Load;
use crate::seed::CUSTOM_VOICE;

/// The kinds of call the drill makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Speech-to-text, default endpoint.
    Stt,
    /// Text-to-speech, public voice.
    Tts,
    /// Speaker verification against a profile enrolled in the primary.
    SpeakerVerify,
    /// A speaker enrollment added to that profile.
    SpeakerEnroll,
    /// Speech-to-text on the custom speech endpoint (each region's own `cid`).
    SttCustom,
    /// Text-to-speech with the custom voice, through the voice fallback chain.
    TtsCustom,
}

impl Kind {
    /// Every kind, in the order of the load's weights.
    pub const ALL: [Kind; 6] = [
        Kind::Stt,
        Kind::Tts,
        Kind::SttCustom,
        Kind::TtsCustom,
        Kind::SpeakerVerify,
        Kind::SpeakerEnroll,
    ];

    /// The kind's name in the scenario and the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Stt => "stt",
            Kind::Tts => "tts",
            Kind::SttCustom => "stt_custom",
            Kind::TtsCustom => "tts_custom",
            Kind::SpeakerVerify => "speaker_verify",
            Kind::SpeakerEnroll => "speaker_enroll",
        }
    }

    /// The kind's weight in `load`.
    pub fn weight(self, load: &Load) -> u32 {
        match self {
            Kind::Stt => load.stt,
            Kind::Tts => load.tts,
            Kind::SttCustom => load.stt_custom,
            Kind::TtsCustom => load.tts_custom,
            Kind::SpeakerVerify => load.speaker_verify,
            Kind::SpeakerEnroll => load.speaker_enroll,
        }
    }

    /// Whether the call goes to a default (STT/TTS) endpoint.
    pub fn is_default_endpoint(self) -> bool {
        matches!(self, Kind::Stt | Kind::Tts)
    }

    /// Whether the call goes to a custom model or voice.
    pub fn is_custom(self) -> bool {
        matches!(self, Kind::SttCustom | Kind::TtsCustom)
    }

    /// Whether the drill can send this kind through its gateway, which knows the regions'
    /// `cid`s when `custom_speech` (the load has `stt_custom`). A gateway adds each region's
    /// `cid` to every recognition that names none, so one gateway serves either the default
    /// or the custom model: with `custom_speech`, `cid` calls go through it (naming the
    /// primary's endpoint, as an Azure script does; the gateway swaps in each region's own) and
    /// default recognitions through the SDK only; without, the reverse. Speaker calls go
    /// through the SDK only: a profile belongs to the primary's resource, whose key the
    /// gateway holds for the primary only.
    pub fn via_gateway(self, custom_speech: bool) -> bool {
        match self {
            Kind::Stt => !custom_speech,
            Kind::SttCustom => custom_speech,
            Kind::Tts | Kind::TtsCustom => true,
            Kind::SpeakerVerify | Kind::SpeakerEnroll => false,
        }
    }

    /// Whether the call goes to speaker recognition (the profile's home region, then its pair).
    pub fn is_speaker(self) -> bool {
        matches!(self, Kind::SpeakerVerify | Kind::SpeakerEnroll)
    }
}

/// One call, as the SDK's caller saw it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds from the start of the load to the call's start.
    pub start: f64,
    /// Wall time of the call, in milliseconds.
    pub latency_ms: f64,
    /// What was called.
    pub kind: Kind,
    /// The region that answered, if it succeeded.
    pub region: Option<String>,
    /// The error's type, if it failed (`all_regions_failed`, `caller_503`, …).
    pub error: Option<String>,
    /// The error's message (the SDK's; it carries no keys or tokens).
    pub message: Option<String>,
    /// Custom voice calls: the link of the voice chain that answered (`custom`,
    /// `custom-secondary`, `public`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The call went through the gateway (not the SDK).
    #[serde(default)]
    pub gateway: bool,
}

impl Sample {
    /// Seconds from the start of the load to the call's end.
    pub fn end(&self) -> f64 {
        self.start + self.latency_ms / 1000.0
    }
}

/// What the load sends: audio and texts made at setup, the clients, the speaker profile.
pub struct Workload {
    /// Client over every region, for STT and TTS.
    pub client: TandemClient,
    /// Client that knows only the primary (its pair is discovered), for speaker calls.
    pub speaker_client: Option<TandemClient>,
    /// A short WAV for recognition.
    pub stt_wav: Bytes,
    /// A WAV of the enrolled voice, for verification.
    pub probe_wav: Bytes,
    /// A short WAV of the same voice, for enrollments made by the load.
    pub enroll_wav: Bytes,
    /// The verification profile.
    pub profile_id: Option<String>,
    /// The public voice.
    pub voice: String,
    /// Key 1 of the primary's resource (the profile's owner), for reading the profile back.
    pub primary_key: String,
    /// Enrollments of the profile made at setup.
    pub setup_enrollments: u64,
    /// Recordings of the custom speech dataset, for `cid` calls (cycled).
    pub custom_clips: Vec<Bytes>,
    /// The gateway the drill started, when some of the load goes through it.
    pub gateway: Option<GatewayTarget>,
}

impl Workload {
    /// The `n`-th call's custom speech recording (they are cycled).
    fn custom_clip(&self, n: u64) -> Bytes {
        match self.custom_clips.len() {
            0 => Bytes::new(),
            len => self.custom_clips[(n as usize) % len].clone(),
        }
    }
}

/// A `tandem gateway` in front of every region, called the way an Azure script calls a region.
pub struct GatewayTarget {
    /// Its base URL.
    pub url: String,
    /// The primary's custom speech endpoint id, which `cid` calls through the gateway name
    /// (the gateway knows every region's).
    pub home_cid: Option<String>,
    /// Plain HTTP client.
    pub http: reqwest::Client,
    /// The process, stopped when the workload is dropped.
    pub(crate) _process: crate::region::GatewayProcess,
}

/// Whether the `n`-th call that could go through the gateway does, for a `share` in [0, 1]:
/// spread evenly (`share` 0.5 sends every other one).
pub fn through_gateway(n: u64, share: f64) -> bool {
    ((n + 1) as f64 * share).floor() > (n as f64 * share).floor()
}

/// The error's type, for the report: the SDK's variant, with the status when there is one.
pub fn error_type(e: &ClientError) -> String {
    match e {
        ClientError::Caller { status, .. } => format!("caller_{status}"),
        ClientError::Unauthorized { .. } => "unauthorized".into(),
        ClientError::AllRegionsFailed { .. } => "all_regions_failed".into(),
        ClientError::Config(_) => "config".into(),
    }
}

/// The kind of the `n`-th call: weighted round robin, so the mix is exact and reproducible.
pub fn kind_of(n: u64, load: &Load) -> Kind {
    let total: u64 = Kind::ALL.iter().map(|k| u64::from(k.weight(load))).sum();
    let mut slot = n % total.max(1);
    for k in Kind::ALL {
        let w = u64::from(k.weight(load));
        if slot < w {
            return k;
        }
        slot -= w;
    }
    Kind::Stt // all weights zero: refused by validation
}

pub(crate) fn ssml(voice: &str, text: &str) -> String {
    format!("<speak version='1.0' xml:lang='en-US'><voice name='{voice}'>{text}</voice></speak>")
}

/// A speaker-recognition request through the SDK's speaker routes.
pub(crate) fn speaker_request(
    path: String,
    content_type: &'static str,
    body: Bytes,
) -> ForwardRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    ForwardRequest {
        method: Method::POST,
        path_and_query: path,
        headers,
        body,
    }
}

/// Who answered a call.
struct Served {
    region: String,
    link: Option<String>,
}

type CallResult = Result<Served, (String, String)>;

fn served(region: String) -> Served {
    Served { region, link: None }
}

/// The `n`-th call: through the SDK, or through the gateway when `gateway` is set.
async fn one_call(w: &Workload, kind: Kind, n: u64, gateway: bool) -> CallResult {
    if gateway {
        if let Some(g) = &w.gateway {
            return gateway_call(w, g, kind, n).await;
        }
    }
    let r = match kind {
        Kind::Stt | Kind::SttCustom => {
            let custom = kind == Kind::SttCustom;
            let wav = if custom {
                w.custom_clip(n)
            } else {
                w.stt_wav.clone()
            };
            let opts = RecognizeOptions {
                use_custom_model: custom,
                ..RecognizeOptions::default()
            };
            match w.client.recognize(wav, &opts).await {
                Ok(a) => return recognized(&a.value, a.region),
                Err(e) => Err(e),
            }
        }
        Kind::Tts | Kind::TtsCustom => {
            let custom = kind == Kind::TtsCustom;
            let voice = if custom { CUSTOM_VOICE } else { &w.voice };
            w.client
                .synthesize(&SynthesisRequest {
                    ssml: ssml(voice, TTS_TEXT),
                    output_format: FORMAT.into(),
                    prefer_custom_voice: custom,
                })
                .await
                .map(|a| Served {
                    region: a.region,
                    link: custom.then(|| a.value.link.as_str().to_owned()),
                })
        }
        Kind::SpeakerVerify | Kind::SpeakerEnroll => {
            let (Some(c), Some(p)) = (&w.speaker_client, &w.profile_id) else {
                return Err(("config".into(), "no speaker profile".into()));
            };
            let base = "/speaker-recognition/verification/text-independent/profiles";
            let req = if kind == Kind::SpeakerVerify {
                let path = format!("{base}/{p}:verify?api-version=2021-09-05&ignoreMinLength=true");
                speaker_request(path, "audio/wav", w.probe_wav.clone())
            } else {
                let path = format!("{base}/{p}/enrollments?api-version=2021-09-05");
                speaker_request(path, "audio/wav", w.enroll_wav.clone())
            };
            match c.forward(CallKind::Speaker, req).await {
                Ok(a) if a.value.status.is_success() => Ok(served(a.region)),
                Ok(a) => return Err(refused(a.value.status.as_u16(), &a.value.body)),
                Err(e) => Err(e),
            }
        }
    };
    r.map_err(|e| (error_type(&e), e.to_string()))
}

const TTS_TEXT: &str = "Four hours of steady work faced us.";
const FORMAT: &str = "riff-16khz-16bit-mono-pcm";

/// A 2xx recognition is a success only if it recognized something: a `cid` the region does
/// not know, or audio it could not hear, is a failure the caller sees.
fn recognized(body: &Value, region: String) -> CallResult {
    match body["RecognitionStatus"].as_str() {
        Some("Success") => Ok(served(region)),
        other => Err((
            format!("recognition_{}", other.unwrap_or("unknown")),
            format!("{region} answered {body}"),
        )),
    }
}

/// A non-2xx answer: its type and the start of its body.
fn refused(status: u16, body: &[u8]) -> (String, String) {
    let body = String::from_utf8_lossy(body).chars().take(300).collect();
    (format!("caller_{status}"), body)
}

/// The call as an Azure script makes it, to the gateway's host: the gateway's answer headers
/// say which region (and, for TTS, which link) served it.
async fn gateway_call(w: &Workload, g: &GatewayTarget, kind: Kind, n: u64) -> CallResult {
    let req = match kind {
        Kind::Stt | Kind::SttCustom => {
            let (cid, wav) = match (kind, &g.home_cid) {
                (Kind::SttCustom, Some(cid)) => (format!("&cid={cid}"), w.custom_clip(n)),
                _ => (String::new(), w.stt_wav.clone()),
            };
            g.http
                .post(format!(
                    "{}/speech/recognition/conversation/cognitiveservices/v1?language=en-US{cid}",
                    g.url
                ))
                .header(
                    "content-type",
                    "audio/wav; codecs=audio/pcm; samplerate=16000",
                )
                .body(wav)
        }
        Kind::Tts | Kind::TtsCustom => {
            // A custom voice is addressed with `deploymentId`; the gateway replaces it with
            // each region's own deployment and falls back to the public voice.
            let (voice, query) = if kind == Kind::TtsCustom {
                (CUSTOM_VOICE, "?deploymentId=drill")
            } else {
                (w.voice.as_str(), "")
            };
            g.http
                .post(format!("{}/cognitiveservices/v1{query}", g.url))
                .header("content-type", "application/ssml+xml")
                .header("x-microsoft-outputformat", FORMAT)
                .body(ssml(voice, TTS_TEXT))
        }
        other => {
            return Err((
                "config".into(),
                format!("{} calls do not go through the gateway", other.name()),
            ))
        }
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Err(("gateway_unreachable".into(), e.to_string())),
    };
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let region = header("x-tandem-region").unwrap_or_default();
    let link = header("x-tandem-voice-link");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(refused(status, &body));
    }
    match kind {
        Kind::Stt | Kind::SttCustom => recognized(
            &serde_json::from_slice(&body).unwrap_or(Value::Null),
            region,
        ),
        Kind::TtsCustom => Ok(Served { region, link }),
        _ => Ok(served(region)),
    }
}

/// Runs the load for `duration` from `t0`; returns every call (those still in flight at the end
/// are awaited) and how many ticks found no free slot.
pub async fn run(
    w: Arc<Workload>,
    load: &Load,
    t0: Instant,
    duration: Duration,
) -> (Vec<Sample>, u64) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let slots = Arc::new(Semaphore::new(load.concurrency));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / load.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    let (mut n, mut skipped, mut gw_n) = (0u64, 0u64, 0u64);
    loop {
        let now = tick.tick().await;
        if now.duration_since(t0) >= duration {
            break;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let kind = kind_of(n, load);
        let custom_speech = load.stt_custom > 0;
        let gateway = kind.via_gateway(custom_speech) && {
            gw_n += 1;
            through_gateway(gw_n - 1, load.gateway_share)
        };
        let call = n;
        n += 1;
        let (w, samples) = (w.clone(), samples.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            let r = one_call(&w, kind, call, gateway).await;
            let (region, link, error, message) = match r {
                Ok(s) => (Some(s.region), s.link, None, None),
                Err((e, m)) => (None, None, Some(e), Some(m)),
            };
            let s = Sample {
                start: started.duration_since(t0).as_secs_f64(),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                kind,
                region,
                error,
                message,
                link,
                gateway,
            };
            samples.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            drop(permit);
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut v = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    v.sort_by(|a, b| a.start.total_cmp(&b.start));
    (v, skipped)
}
