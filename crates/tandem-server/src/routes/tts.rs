//! `POST /cognitiveservices/v1` (SSML → audio) and `GET /cognitiveservices/voices/list`.

use std::collections::HashMap;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tandem_audio::OutputFormat;
use tandem_engines::ssml::{self, SsmlLimits};
use tandem_engines::tts::{long_name, render};
use tandem_engines::{Gender, Synthesizer};

use super::read_body;
use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Used when a client sends no `X-Microsoft-OutputFormat`.
const DEFAULT_FORMAT: &str = "riff-24khz-16bit-mono-pcm";

fn output_format(headers: &HeaderMap) -> Result<OutputFormat, ApiError> {
    let name = headers
        .get("x-microsoft-outputformat")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(DEFAULT_FORMAT);
    OutputFormat::parse(name.trim())
        .map_err(|e| ApiError::bad_request("InvalidOutputFormat", e.to_string()))
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get("content-type").and_then(|v| v.to_str().ok()) {
        None => Ok(()),
        Some(ct)
            if ct.to_ascii_lowercase().contains("ssml")
                || ct.to_ascii_lowercase().contains("xml") =>
        {
            Ok(())
        }
        Some(ct) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type {ct:?} is not supported: send SSML as application/ssml+xml"
        ))),
    }
}

pub(crate) async fn synthesize(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // Read the document before judging the request (see the recognition handler).
    let max = state.config().max_ssml_bytes;
    let bytes = read_body(body, max, "SSML document").await?;
    if let Some((_, id)) = q
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("deploymentId"))
    {
        // A custom voice deployment of the caller's resource (another resource's is 404).
        let format = output_format(&headers)?;
        let started = Instant::now();
        let pcm =
            super::custom_voice::synth::synthesize(&state, caller.resource.id, id, &bytes, max)
                .await?;
        let secs = pcm.duration_secs();
        if secs > 0.0 {
            state
                .metrics()
                .rtf
                .with_label_values(&["tts"])
                .observe(started.elapsed().as_secs_f64() / secs);
        }
        tracing::info!(resource = %caller.resource.id, deployment = %id, audio_secs = secs, format = format.name(), "synthesized with a custom voice");
        let audio = format.encode(&pcm);
        return Ok(([(header::CONTENT_TYPE, format.content_type())], audio).into_response());
    }
    check_content_type(&headers)?;
    let format = output_format(&headers)?;
    let engines = state.engines().ok_or_else(|| ApiError::Unavailable {
        message: "the speech engines are still loading".into(),
        retry_after: 2,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        ApiError::bad_request("InvalidSsml", "the SSML document is not valid UTF-8")
    })?;
    let limits = SsmlLimits {
        max_bytes: max,
        ..SsmlLimits::default()
    };
    let doc = ssml::parse(text, &limits)?;
    let tts = engines.tts.clone();
    let started = Instant::now();
    let pcm = state.tts_pool().run(move || render(&doc, &tts)).await??;
    let secs = pcm.duration_secs();
    if secs > 0.0 {
        state
            .metrics()
            .rtf
            .with_label_values(&["tts"])
            .observe(started.elapsed().as_secs_f64() / secs);
    }
    tracing::info!(resource = %caller.resource.id, audio_secs = secs, format = format.name(), "synthesized");
    let audio = format.encode(&pcm);
    Ok(([(header::CONTENT_TYPE, format.content_type())], audio).into_response())
}

fn locale_name(locale: &str) -> String {
    let name = match locale {
        "en-US" => "English (United States)",
        "en-GB" => "English (United Kingdom)",
        "de-DE" => "German (Germany)",
        "fr-FR" => "French (France)",
        "es-ES" => "Spanish (Spain)",
        "it-IT" => "Italian (Italy)",
        "pt-BR" => "Portuguese (Brazil)",
        "nl-NL" => "Dutch (Netherlands)",
        "pl-PL" => "Polish (Poland)",
        "sv-SE" => "Swedish (Sweden)",
        "ru-RU" => "Russian (Russia)",
        "ja-JP" => "Japanese (Japan)",
        other => other,
    };
    name.to_owned()
}

pub(crate) async fn voices(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    let engines = state.engines().ok_or_else(|| ApiError::Unavailable {
        message: "the speech engines are still loading".into(),
        retry_after: 2,
    })?;
    let mut list: Vec<Value> = engines
        .tts
        .voices()
        .iter()
        .map(|v| {
            json!({
                "Name": long_name(v),
                "DisplayName": v.display_name,
                "LocalName": v.display_name,
                "ShortName": v.short_name,
                "Gender": match v.gender { Gender::Female => "Female", Gender::Male => "Male" },
                "Locale": v.locale,
                "LocaleName": locale_name(&v.locale),
                "SampleRateHertz": v.sample_rate.to_string(),
                "VoiceType": "Standard",
                "Status": "GA",
            })
        })
        .collect();
    // The caller's deployed custom voices (never another resource's).
    list.extend(super::custom_voice::synth::voices_list(&state, caller.resource.id).await?);
    Ok(Json(Value::Array(list)))
}
