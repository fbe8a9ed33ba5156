//! Projects, consents and training sets.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use tandem_audio::{decode_wav, resample, Pcm};
use tandem_core::ResourceId;
use tandem_engines::Embedding;
use tandem_store::{asset_file_key, AssetStatus, AssetUpdate};
use uuid::Uuid;

use super::consent_check::{self as check, round4};
use super::{
    all, check_locale, insert, json_body, load, new_asset, remove, required, text_field, Coll, Doc,
    Part,
};
use crate::routes::custom_speech::content_url;
use crate::{ApiError, AppState};

/// Largest consent upload (multipart), bytes.
pub(crate) const MAX_CONSENT_BYTES: usize = 16 * 1024 * 1024;
/// Largest training-set upload (multipart), bytes.
pub(crate) const MAX_TRAININGSET_BYTES: usize = 256 * 1024 * 1024;
/// Most utterances a training set holds.
const MAX_UTTERANCES: usize = 5_000;
/// Longest utterance, seconds.
const MAX_UTTERANCE_SECS: f64 = 30.0;
/// Audio of an upload that goes into its speaker embedding, seconds.
const EMBED_SECS: f64 = 60.0;

/// The blob id of a consent's audio.
fn consent_audio_file() -> Uuid {
    Uuid::from_u128(0x0c0e_5e27_0a0d_4000_8000_0000_0000_0001)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidParameterValue", message)
}

/// The project `id` must exist (400 `InvalidProject` otherwise).
pub(crate) async fn check_project(
    state: &AppState,
    resource: ResourceId,
    id: &str,
) -> Result<(), ApiError> {
    match load(state, resource, Coll::Projects, id).await {
        Ok(_) => Ok(()),
        Err(ApiError::NotFound(_)) => Err(ApiError::bad_request(
            "InvalidProject",
            format!("project {id:?} does not exist"),
        )),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProjectBody {
    description: Option<String>,
    kind: Option<String>,
}

/// `PUT /projects/{id}` `{description, kind}`: only `ProfessionalVoice`.
pub(crate) async fn put_project(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    body: &[u8],
) -> Result<tandem_store::Asset, ApiError> {
    let b: ProjectBody = json_body(body)?;
    let kind = b.kind.unwrap_or_else(|| "ProfessionalVoice".into());
    if kind != "ProfessionalVoice" {
        return Err(invalid(format!(
            "project kind {kind:?} is not supported: only ProfessionalVoice"
        )));
    }
    let mut doc = Doc::new(id);
    doc.fields.insert("kind".into(), json!(kind));
    insert(
        state,
        Coll::Projects,
        new_asset(resource, Coll::Projects, &doc, b.description, ""),
    )
    .await
}

/// Before a project is deleted: refused (409) while one of its models is deployed; otherwise
/// its consents, training sets and models go with it.
pub(crate) async fn delete_project_children(
    state: &AppState,
    resource: ResourceId,
    project: &str,
) -> Result<(), ApiError> {
    let of_project = |d: &Doc| d.field("projectId") == Some(project);
    if let Some((_, e)) = all(state, resource, Coll::Endpoints)
        .await?
        .into_iter()
        .find(|(_, d)| of_project(d))
    {
        return Err(ApiError::InUse(format!(
            "project {project:?} has endpoint {:?}: delete its endpoints first",
            e.id
        )));
    }
    for coll in [Coll::Models, Coll::TrainingSets, Coll::Consents] {
        for (asset, doc) in all(state, resource, coll).await? {
            if of_project(&doc) {
                if coll == Coll::Models {
                    super::synth::forget_model(asset.id);
                }
                remove(state, &asset).await?;
            }
        }
    }
    Ok(())
}

/// What describes a consent, however its audio arrives.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsentMeta {
    voice_talent_name: Option<String>,
    company_name: Option<String>,
    locale: Option<String>,
    project_id: Option<String>,
    description: Option<String>,
    audio_url: Option<String>,
}

/// `POST /consents/{id}` (multipart: `voiceTalentName`, `companyName`, `locale`, `projectId`,
/// `description`, and the WAV in `audiodata`).
pub(crate) async fn post_consent(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    form: Vec<Part>,
) -> Result<tandem_store::Asset, ApiError> {
    let meta = ConsentMeta {
        voice_talent_name: text_field(&form, "voiceTalentName"),
        company_name: text_field(&form, "companyName"),
        locale: text_field(&form, "locale"),
        project_id: text_field(&form, "projectId"),
        description: text_field(&form, "description"),
        audio_url: None,
    };
    let audio = form
        .into_iter()
        .find(|p| p.name.eq_ignore_ascii_case("audiodata"))
        .map(|p| p.bytes)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "EmptyRequest",
                "the form has no audio: put the consent WAV in the part named \"audiodata\"",
            )
        })?;
    create_consent(state, resource, id, meta, audio).await
}

/// `PUT /consents/{id}` (JSON with `audioUrl`, fetched only from an allowed host).
pub(crate) async fn put_consent_url(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    body: &[u8],
) -> Result<tandem_store::Asset, ApiError> {
    let meta: ConsentMeta = json_body(body)?;
    let raw = required(meta.audio_url.clone(), "audioUrl")?;
    let cfg = state.config().custom_speech.clone();
    let url = content_url::check(&raw, &cfg.content_url_allow_hosts)?;
    let mut cfg = cfg;
    cfg.max_upload_bytes = cfg.max_upload_bytes.min(MAX_CONSENT_BYTES);
    let audio = content_url::fetch(url, &cfg).await?;
    create_consent(state, resource, id, meta, audio).await
}

/// Checks the consent (statement and voice), stores its audio, then the row: `Succeeded` when
/// the statement was said (`textScore` ≥ the threshold), else `Failed` with the reason.
async fn create_consent(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    meta: ConsentMeta,
    audio: Bytes,
) -> Result<tandem_store::Asset, ApiError> {
    let talent = required(meta.voice_talent_name, "voiceTalentName")?;
    let company = required(meta.company_name, "companyName")?;
    let project = required(meta.project_id, "projectId")?;
    let locale = check_locale(meta.locale.as_deref())?;
    check_project(state, resource, &project).await?;
    let row = super::row_id(resource, Coll::Consents.kind(), id);
    if state
        .store()
        .meta
        .get_asset(resource, Coll::Consents.kind(), row)
        .await?
        .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "consent {id:?} exists already: delete it first"
        )));
    }
    let pcm = decode_wav(&audio)?;
    let secs = pcm.duration_secs();
    if !(1.0..=check::MAX_CONSENT_SECS).contains(&secs) {
        return Err(ApiError::bad_request(
            "InvalidAudioFormat",
            format!(
                "the consent audio is {secs:.1} s long: it must be 1-{} s",
                check::MAX_CONSENT_SECS
            ),
        ));
    }
    let expected = check::statement(&talent, &company);
    let transcript = check::transcribe(state, &pcm).await?;
    let score = check::text_score(&expected, &transcript);
    let passed = score >= check::TEXT_SCORE_THRESHOLD;
    let embedding = check::embed(state, pcm).await?;
    let mut properties = json!({
        "transcript": transcript,
        "textScore": score,
        "textScoreThreshold": check::TEXT_SCORE_THRESHOLD,
        "passed": passed,
    });
    if !passed {
        properties["error"] = json!({
            "code": "ConsentVerificationFailed",
            "message": format!(
                "the recording does not say the consent statement (word accuracy {score} < {}): \
                 it must say \"{expected}\"",
                check::TEXT_SCORE_THRESHOLD
            ),
        });
    }
    let mut doc = Doc::new(id);
    doc.fields.insert("voiceTalentName".into(), json!(talent));
    doc.fields.insert("companyName".into(), json!(company));
    doc.fields.insert("projectId".into(), json!(project));
    if let Some(url) = meta.audio_url {
        doc.fields.insert("audioUrl".into(), json!(url));
    }
    doc.internal
        .insert("audioFile".into(), json!(consent_audio_file()));
    doc.internal.insert("embedding".into(), json!(embedding.0));
    let store = state.store();
    store
        .blobs
        .put(&asset_file_key(resource, row, consent_audio_file()), audio)
        .await?;
    let mut new = new_asset(resource, Coll::Consents, &doc, meta.description, &locale);
    new.status = if passed {
        AssetStatus::Succeeded
    } else {
        AssetStatus::Failed
    };
    new.properties = properties;
    insert(state, Coll::Consents, new).await
}

/// An embedding kept in a document.
pub(crate) fn stored_embedding(v: Option<&Value>) -> Option<Embedding> {
    let v: Vec<f32> = serde_json::from_value(v?.clone()).ok()?;
    (!v.is_empty()).then_some(Embedding(v))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TrainingSetBody {
    description: Option<String>,
    locale: Option<String>,
    project_id: Option<String>,
}

/// `PUT /trainingsets/{id}` `{description, locale, projectId}`: an empty set.
pub(crate) async fn put_trainingset(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    body: &[u8],
) -> Result<tandem_store::Asset, ApiError> {
    let b: TrainingSetBody = json_body(body)?;
    let project = required(b.project_id, "projectId")?;
    let locale = check_locale(b.locale.as_deref())?;
    check_project(state, resource, &project).await?;
    let mut doc = Doc::new(id);
    doc.fields.insert("projectId".into(), json!(project));
    let mut new = new_asset(resource, Coll::TrainingSets, &doc, b.description, &locale);
    new.properties =
        json!({ "utteranceCount": 0, "durationInSeconds": 0.0, "isContextual": false });
    insert(state, Coll::TrainingSets, new).await
}

/// Parses a script: one `<file id>\t<text>` line per utterance (a BOM, blank lines and
/// surrounding spaces ignored). Ids are unique; the file id is a WAV's name without `.wav`.
pub(crate) fn parse_script(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (n, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (id, said) = line
            .split_once('\t')
            .ok_or_else(|| format!("script line {}: expected <file id><TAB><text>", n + 1))?;
        let (id, said) = (wav_stem(id.trim()), said.trim());
        if id.is_empty() || said.is_empty() {
            return Err(format!(
                "script line {}: the id or the text is empty",
                n + 1
            ));
        }
        if out.iter().any(|(i, _)| *i == id) {
            return Err(format!("script line {}: id {id:?} appears twice", n + 1));
        }
        out.push((id.to_owned(), said.to_owned()));
    }
    if out.is_empty() {
        return Err("the script has no lines".into());
    }
    Ok(out)
}

/// `0001.wav` → `0001`.
fn wav_stem(name: &str) -> &str {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.strip_suffix(".wav")
        .or_else(|| base.strip_suffix(".WAV"))
        .unwrap_or(base)
}

/// `POST /trainingsets/{id}:upload` (multipart): a `script` part (`<file id>\t<text>` lines)
/// and the audio, as a zip of WAVs (read with the dataset zip reader: no folders, traversal,
/// bombs) in `audiodata`, or as WAV parts named by file id. The utterances are added to the
/// set; 202 with the set.
pub(crate) async fn upload_trainingset(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    form: Vec<Part>,
) -> Result<tandem_store::Asset, ApiError> {
    let (asset, mut doc) = load(state, resource, Coll::TrainingSets, id).await?;
    let bad = |m: String| ApiError::bad_request("InvalidDataset", m);
    let mut script = None;
    let mut wavs: Vec<(String, Vec<u8>)> = Vec::new();
    for p in form {
        let file = p.file_name.clone().unwrap_or_default();
        if p.name.eq_ignore_ascii_case("script") || file.ends_with(".txt") {
            script = Some(String::from_utf8_lossy(&p.bytes).into_owned());
        } else if p.bytes.starts_with(b"PK") {
            let cfg = &state.config().custom_speech;
            let limits = tandem_datasets::Limits {
                max_entry_bytes: cfg.max_zip_entry_bytes,
                max_total_bytes: cfg.max_zip_total_bytes,
                ..tandem_datasets::Limits::default()
            };
            for e in tandem_datasets::zipfile::read_flat_zip(&p.bytes, &limits)? {
                if e.name.ends_with(".txt") {
                    script = Some(String::from_utf8_lossy(&e.bytes).into_owned());
                } else {
                    wavs.push((wav_stem(&e.name).to_owned(), e.bytes));
                }
            }
        } else if p.bytes.starts_with(b"RIFF") {
            let name = if file.is_empty() {
                p.name.clone()
            } else {
                file
            };
            wavs.push((wav_stem(&name).to_owned(), p.bytes.to_vec()));
        }
    }
    let script = parse_script(&script.ok_or_else(|| {
        bad("the upload has no script: add a \"script\" part of <file id>\\t<text> lines".into())
    })?)
    .map_err(bad)?;
    if wavs.is_empty() {
        return Err(bad("the upload has no WAV audio".into()));
    }
    let mut files: Vec<Value> = doc
        .internal
        .get("files")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if files.len() + wavs.len() > MAX_UTTERANCES {
        return Err(bad(format!(
            "a training set holds at most {MAX_UTTERANCES} utterances"
        )));
    }
    let mut decoded: Vec<(Uuid, String, String, Pcm, Vec<u8>)> = Vec::new();
    for (name, bytes) in wavs {
        let text = script
            .iter()
            .find(|(i, _)| *i == name)
            .map(|(_, t)| t.clone())
            .ok_or_else(|| bad(format!("audio {name:?} has no line in the script")))?;
        let pcm = decode_wav(&bytes).map_err(|e| bad(format!("audio {name:?}: {e}")))?;
        if pcm.duration_secs() > MAX_UTTERANCE_SECS {
            return Err(bad(format!(
                "audio {name:?} is longer than {MAX_UTTERANCE_SECS} s"
            )));
        }
        decoded.push((Uuid::new_v4(), name, text, pcm, bytes));
    }
    // One embedding of up to a minute of this upload's audio.
    let mut joined = Pcm {
        sample_rate: 16_000,
        samples: Vec::new(),
    };
    for (_, _, _, pcm, _) in &decoded {
        if joined.duration_secs() < EMBED_SECS {
            joined.samples.extend(resample(pcm, 16_000).samples);
        }
    }
    let embedding = check::embed(state, joined).await?;
    let store = state.store();
    for (file, name, text, pcm, bytes) in decoded {
        store
            .blobs
            .put(&asset_file_key(resource, asset.id, file), bytes.into())
            .await?;
        files.push(json!({
            "id": file, "name": name, "text": text, "durationSecs": round4(pcm.duration_secs()),
        }));
    }
    let mut embeddings: Vec<Value> = doc
        .internal
        .get("embeddings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    embeddings.push(json!(embedding.0));
    let duration: f64 = files
        .iter()
        .filter_map(|f| f["durationSecs"].as_f64())
        .sum();
    doc.internal.insert("files".into(), json!(files));
    doc.internal.insert("embeddings".into(), json!(embeddings));
    let properties = json!({
        "utteranceCount": files.len(),
        "durationInSeconds": round4(duration),
        "isContextual": false,
    });
    super::update(
        state,
        &asset,
        AssetUpdate {
            status: Some(AssetStatus::Succeeded),
            properties: Some(properties),
            doc: Some(doc.to_value()),
            ..AssetUpdate::default()
        },
    )
    .await
}

/// A training set's speaker embedding: the renormalised mean of its uploads' embeddings.
pub(crate) fn trainingset_embedding(doc: &Doc) -> Option<Embedding> {
    let list: Vec<Embedding> = doc
        .internal
        .get("embeddings")?
        .as_array()?
        .iter()
        .filter_map(|v| stored_embedding(Some(v)))
        .collect();
    (!list.is_empty()).then(|| Embedding::average(&list))
}
