//! The load generator: calls started at a fixed rate through the failover SDK, at most
//! `concurrency` in flight, each one recorded as a [`Sample`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use tandem_client::{
    CallKind, ClientError, ForwardRequest, RecognizeOptions, SynthesisRequest, TandemClient,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::scenario::Load;

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
}

impl Kind {
    /// Whether the call goes to a default (STT/TTS) endpoint.
    pub fn is_default_endpoint(self) -> bool {
        matches!(self, Kind::Stt | Kind::Tts)
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
    let total = u64::from(load.stt + load.tts + load.speaker_verify + load.speaker_enroll).max(1);
    let slot = n % total;
    if slot < u64::from(load.stt) {
        Kind::Stt
    } else if slot < u64::from(load.stt + load.tts) {
        Kind::Tts
    } else if slot < u64::from(load.stt + load.tts + load.speaker_verify) {
        Kind::SpeakerVerify
    } else {
        Kind::SpeakerEnroll
    }
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

async fn one_call(w: &Workload, kind: Kind) -> Result<String, (String, String)> {
    let r = match kind {
        Kind::Stt => w
            .client
            .recognize(w.stt_wav.clone(), &RecognizeOptions::default())
            .await
            .map(|a| a.region),
        Kind::Tts => w
            .client
            .synthesize(&SynthesisRequest {
                ssml: ssml(&w.voice, "Four hours of steady work faced us."),
                output_format: "riff-16khz-16bit-mono-pcm".into(),
                prefer_custom_voice: false,
            })
            .await
            .map(|a| a.region),
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
                Ok(a) if a.value.status.is_success() => Ok(a.region),
                Ok(a) => {
                    let status = a.value.status.as_u16();
                    let body = String::from_utf8_lossy(&a.value.body)
                        .chars()
                        .take(300)
                        .collect();
                    return Err((format!("caller_{status}"), body));
                }
                Err(e) => Err(e),
            }
        }
    };
    r.map_err(|e| (error_type(&e), e.to_string()))
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
    let (mut n, mut skipped) = (0u64, 0u64);
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
        n += 1;
        let (w, samples) = (w.clone(), samples.clone());
        tasks.spawn(async move {
            let started = Instant::now();
            let r = one_call(&w, kind).await;
            let s = Sample {
                start: started.duration_since(t0).as_secs_f64(),
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                kind,
                region: r.as_ref().ok().cloned(),
                error: r.as_ref().err().map(|e| e.0.clone()),
                message: r.err().map(|e| e.1),
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
