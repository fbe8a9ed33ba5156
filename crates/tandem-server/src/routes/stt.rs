//! `POST /speech/recognition/{mode}/cognitiveservices/v1`: short-audio speech-to-text.
//!
//! The flow: authenticate (and take a quota slot), read the WAV (whole or chunked) under the
//! body limit, decode and resample to 16 kHz mono, refuse audio over the limit, find speech
//! with the VAD (none → `InitialSilenceTimeout`), recognize on the bounded worker pool (with the
//! Custom Speech model of `?cid=<endpoint>` when given, on the recognizer of its base model),
//! and answer in Azure's simple or detailed shape.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};
use tandem_audio::{decode_wav, detect_speech, resample};
use tandem_engines::text::{azure_forms, Profanity};
use tandem_engines::{RecognizeOptions, Recognizer};

use super::custom_speech::{
    base_scope, endpoint_model, record_log, transcription_doc, Deployed, LogScope,
};
use super::read_body;
use crate::auth::Caller;
use crate::{ApiError, AppState};

const TICKS_PER_SEC: f64 = 10_000_000.0;

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Simple,
    Detailed,
}

struct Params {
    language: String,
    format: Format,
    profanity: Profanity,
    /// The Custom Speech endpoint to recognize with.
    cid: Option<String>,
    /// `storeAudio=true`: log this recognition (audio and transcription) even where the
    /// endpoint does not log everything.
    store_audio: bool,
}

fn params(mode: &str, q: &HashMap<String, String>) -> Result<Params, ApiError> {
    if !matches!(mode, "conversation" | "interactive" | "dictation") {
        return Err(ApiError::NotFound(format!(
            "unknown recognition mode {mode:?}: use conversation, interactive or dictation"
        )));
    }
    // Azure's query parameters are case-insensitive in practice.
    let get = |k: &str| {
        q.iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let language = match get("language") {
        Some(l) if !l.trim().is_empty() => l.trim().to_owned(),
        _ => {
            return Err(ApiError::bad_request(
                "InvalidLanguage",
                "the language query parameter is required, e.g. ?language=en-US",
            ))
        }
    };
    let format = match get("format").map(str::to_ascii_lowercase).as_deref() {
        None | Some("simple") => Format::Simple,
        Some("detailed") => Format::Detailed,
        Some(other) => {
            return Err(ApiError::bad_request(
                "InvalidArgument",
                format!("format {other:?} is not supported: use simple or detailed"),
            ))
        }
    };
    let profanity = match get("profanity") {
        None => Profanity::Masked,
        Some(p) => p.parse().map_err(|_| {
            ApiError::bad_request(
                "InvalidArgument",
                format!("profanity {p:?} is not supported: use masked, removed or raw"),
            )
        })?,
    };
    let cid = get("cid")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let store_audio = match get("storeAudio").map(|v| v.trim().to_ascii_lowercase()) {
        None => false,
        Some(v) if v == "true" => true,
        Some(v) if v == "false" => false,
        Some(v) => {
            return Err(ApiError::bad_request(
                "InvalidArgument",
                format!("storeAudio {v:?} is not a boolean: use true or false"),
            ))
        }
    };
    Ok(Params {
        language,
        format,
        profanity,
        cid,
        store_audio,
    })
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(ct) = headers.get("content-type").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ct = ct.to_ascii_lowercase();
    if ct.contains("ogg") || ct.contains("opus") {
        return Err(ApiError::UnsupportedMediaType(
            "audio/ogg (Opus) is not supported; send audio/wav; codecs=audio/pcm; samplerate=16000"
                .into(),
        ));
    }
    Ok(())
}

fn unsupported_language(language: &str, recognizer: &dyn Recognizer) -> ApiError {
    ApiError::bad_request(
        "InvalidLanguage",
        format!(
            "language {language:?} is not supported by the model ({}); use en-US",
            recognizer.name()
        ),
    )
}

fn ticks(secs: f64) -> u64 {
    (secs * TICKS_PER_SEC).round().max(0.0) as u64
}

pub(crate) async fn recognize(
    caller: Caller,
    State(state): State<AppState>,
    Path(mode): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    // Read the upload before judging the request: answering while the client is still sending
    // would break its pipe instead of showing it the error.
    let bytes = read_body(body, state.config().max_body_bytes, "audio").await?;
    let p = params(&mode, &q)?;
    check_content_type(&headers)?;
    // The endpoint is read once per request: for its model and for its logging setting.
    let deployed = match &p.cid {
        Some(cid) => Some(endpoint_model(&state, caller.resource.id, cid).await?),
        None => None,
    };
    let (response, audio_secs) =
        recognize_audio(&caller, &state, &p, deployed.as_ref(), &bytes).await?;
    let scope = match &deployed {
        Some(d) if d.logging || p.store_audio => Some(LogScope::Endpoint(d.id)),
        Some(_) => None,
        None if p.store_audio => base_scope(&p.language),
        None => None,
    };
    if let Some(scope) = scope {
        let log = Logged {
            mode: &mode,
            audio_secs,
            response: &response,
        };
        log_recognition(&state, &caller, &p, scope, bytes, log).await;
    }
    Ok(Json(response))
}

/// What a logged recognition records besides its audio.
struct Logged<'a> {
    mode: &'a str,
    audio_secs: f64,
    response: &'a Value,
}

/// Logs the recognition in `scope` (Custom Speech endpoint logs: the endpoint logs everything,
/// or the request asked with `storeAudio=true`). A failure to log is a warning, never the
/// caller's error: the recognition has happened and is answered.
async fn log_recognition(
    state: &AppState,
    caller: &Caller,
    p: &Params,
    scope: LogScope,
    audio: Bytes,
    log: Logged<'_>,
) {
    let set = uuid::Uuid::new_v4();
    let at = time::OffsetDateTime::now_utc();
    let doc = transcription_doc(
        set,
        at,
        scope,
        log.mode,
        &p.language,
        log.audio_secs,
        log.response,
    );
    let store = state.store();
    if let Err(e) = record_log(store, caller.resource.id, scope, set, at, audio, &doc).await {
        tracing::warn!(resource = %caller.resource.id, error = %e, "could not store an endpoint log");
    }
}

/// Recognizes one short-audio request (with the endpoint's model when `deployed`): the answer
/// in Azure's simple or detailed shape, and the audio's length in seconds.
async fn recognize_audio(
    caller: &Caller,
    state: &AppState,
    p: &Params,
    deployed: Option<&Deployed>,
    bytes: &Bytes,
) -> Result<(Value, f64), ApiError> {
    let engines = state.engines().ok_or_else(|| ApiError::Unavailable {
        message: "the speech engines are still loading".into(),
        retry_after: 2,
    })?;
    // With `cid`, the endpoint's base model decides (below).
    if p.cid.is_none() && !engines.recognizer.supports_language(&p.language) {
        return Err(unsupported_language(
            &p.language,
            engines.recognizer.as_ref(),
        ));
    }
    let pcm = decode_wav(bytes)?;
    let max = state.config().max_audio_secs as f64;
    if pcm.duration_secs() > max {
        return Err(ApiError::bad_request(
            "InvalidAudioLength",
            format!(
                "the audio is {:.1} s long; short-audio recognition accepts at most {max} s",
                pcm.duration_secs()
            ),
        ));
    }
    let pcm = resample(&pcm, 16_000);
    let Some(span) = detect_speech(&pcm) else {
        let secs = pcm.duration_secs();
        let silence = json!({
            "RecognitionStatus": "InitialSilenceTimeout",
            "Offset": ticks(secs),
            "Duration": 0,
        });
        return Ok((silence, secs));
    };
    // A custom model runs on the recognizer of its base model, which may still be loading
    // (503 with Retry-After).
    let (recognizer, adapted) = match deployed {
        Some(d) => {
            let recognizer = engines.bases.get_now(d.model.base_model())?;
            if !recognizer.supports_language(&p.language) {
                return Err(unsupported_language(&p.language, recognizer.as_ref()));
            }
            (recognizer, Some(d.model.clone()))
        }
        None => (engines.recognizer.clone(), None),
    };
    let opts = RecognizeOptions {
        language: p.language.clone(),
        audio_ctx: state.config().whisper_audio_ctx,
    };
    let audio_secs = pcm.duration_secs();
    let engine_name = recognizer.name().to_owned();
    let started = Instant::now();
    let result = state
        .stt_pool()
        .run(move || recognizer.recognize_with_model(&pcm.samples, &opts, adapted.as_deref()))
        .await??;
    let rtf = started.elapsed().as_secs_f64() / audio_secs.max(0.01);
    state
        .metrics()
        .rtf
        .with_label_values(&[&engine_name])
        .observe(rtf);
    tracing::info!(resource = %caller.resource.id, audio_secs, rtf, "recognized");

    let offset = ticks(span.start_secs);
    let duration = ticks(span.end_secs - span.start_secs);
    let forms = azure_forms(&result.text, p.profanity);
    if forms.display.trim().is_empty() {
        let no_match = json!({
            "RecognitionStatus": "NoMatch",
            "Offset": offset,
            "Duration": duration,
        });
        return Ok((no_match, audio_secs));
    }
    let response = match p.format {
        Format::Simple => json!({
            "RecognitionStatus": "Success",
            "DisplayText": forms.display,
            "Offset": offset,
            "Duration": duration,
        }),
        Format::Detailed => json!({
            "RecognitionStatus": "Success",
            "Offset": offset,
            "Duration": duration,
            "DisplayText": forms.display,
            "NBest": [{
                "Confidence": result.confidence,
                "Lexical": forms.lexical,
                "ITN": forms.itn,
                "MaskedITN": forms.masked_itn,
                "Display": forms.display,
            }],
        }),
    };
    Ok((response, audio_secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn query_parameters() {
        let p = params("conversation", &q(&[("language", "en-US")])).unwrap();
        assert!(p.format == Format::Simple && p.profanity == Profanity::Masked);
        let p = params(
            "dictation",
            &q(&[
                ("Language", "en-US"),
                ("format", "Detailed"),
                ("profanity", "raw"),
            ]),
        )
        .unwrap();
        assert!(p.format == Format::Detailed && p.profanity == Profanity::Raw);
        assert_eq!(
            params("conversation", &q(&[]))
                .err()
                .unwrap()
                .status()
                .as_u16(),
            400
        );
        assert_eq!(
            params("bogus", &q(&[("language", "en-US")]))
                .err()
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        assert_eq!(
            params("interactive", &q(&[("language", "en-US"), ("format", "x")]))
                .err()
                .unwrap()
                .status()
                .as_u16(),
            400
        );
        assert_eq!(
            params(
                "interactive",
                &q(&[("language", "en-US"), ("profanity", "x")])
            )
            .err()
            .unwrap()
            .status()
            .as_u16(),
            400
        );
    }

    #[test]
    fn cid_names_an_endpoint_and_an_empty_one_is_none() {
        let p = params(
            "conversation",
            &q(&[("language", "en-US"), ("CID", " e1 ")]),
        )
        .unwrap();
        assert_eq!(p.cid.as_deref(), Some("e1"));
        let p = params("conversation", &q(&[("language", "en-US"), ("cid", "")])).unwrap();
        assert!(p.cid.is_none());
    }

    #[test]
    fn store_audio_is_a_boolean_and_off_by_default() {
        let with = |v: &str| {
            params(
                "conversation",
                &q(&[("language", "en-US"), ("storeAudio", v)]),
            )
        };
        assert!(
            !params("conversation", &q(&[("language", "en-US")]))
                .unwrap()
                .store_audio
        );
        assert!(with("true").unwrap().store_audio);
        assert!(with(" TRUE ").unwrap().store_audio);
        assert!(!with("false").unwrap().store_audio);
        for bad in ["", "yes", "1"] {
            assert!(with(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ticks_are_100ns() {
        assert_eq!(ticks(1.0), 10_000_000);
        assert_eq!(ticks(0.5), 5_000_000);
    }
}
