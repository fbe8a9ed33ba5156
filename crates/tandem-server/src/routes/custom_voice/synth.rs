//! Endpoints (deployed voice models) and synthesis with them: `PUT /endpoints/{id}` loads the
//! voice into the process's voice cache before it answers, and `POST /cognitiveservices/v1
//! ?deploymentId=` speaks with it. The cache is keyed by the model's row id (derived from its
//! resource, so one resource never gets another's voice) and filled lazily: after a restart
//! the first request of an endpoint loads its voice from the blob store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;
use serde_json::{json, Value};
use tandem_audio::Pcm;
use tandem_core::ResourceId;
use tandem_engines::ssml::{self, Segment, SsmlLimits};
use tandem_engines::tts::piper::PiperVoice;
use tandem_engines::Prosody;
use tandem_store::{asset_file_key, Asset, AssetStatus};
use uuid::Uuid;

use super::models::{voice_from_bytes, CONFIG_FILE, ONNX_FILE};
use super::{all, insert, json_body, load, new_asset, required, Coll, Doc};
use crate::{ApiError, AppState};

/// Voices kept loaded (least recently used goes first). A Piper "medium" voice takes about
/// 65 MB.
const CAPACITY: usize = 8;

struct Cache {
    voices: HashMap<Uuid, (Arc<PiperVoice>, u64)>,
    clock: u64,
}

fn cache() -> std::sync::MutexGuard<'static, Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE
        .get_or_init(|| {
            Mutex::new(Cache {
                voices: HashMap::new(),
                clock: 0,
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// Keeps `voice`, the voice of the model row `model`.
pub(crate) fn cache_voice(model: Uuid, voice: Arc<PiperVoice>) {
    let mut c = cache();
    c.clock += 1;
    let now = c.clock;
    if !c.voices.contains_key(&model) && c.voices.len() >= CAPACITY {
        if let Some(oldest) = c
            .voices
            .iter()
            .min_by_key(|(_, (_, t))| *t)
            .map(|(k, _)| *k)
        {
            c.voices.remove(&oldest);
        }
    }
    c.voices.insert(model, (voice, now));
}

/// Drops the voice of the model row `model` (deleted).
pub(crate) fn forget_model(model: Uuid) {
    cache().voices.remove(&model);
}

fn cached(model: Uuid) -> Option<Arc<PiperVoice>> {
    let mut c = cache();
    c.clock += 1;
    let now = c.clock;
    let e = c.voices.get_mut(&model)?;
    e.1 = now;
    Some(e.0.clone())
}

/// The voice of `model` (a row of the caller's resource): cached, or loaded from its blobs.
async fn voice(state: &AppState, model: &Asset) -> Result<Arc<PiperVoice>, ApiError> {
    if let Some(v) = cached(model.id) {
        return Ok(v);
    }
    let blob = |file| asset_file_key(model.resource_id, model.id, file);
    let store = state.store();
    let missing = || ApiError::Internal(format!("voice model {} has lost its files", model.id));
    let onnx = store
        .blobs
        .get(&blob(ONNX_FILE))
        .await?
        .ok_or_else(missing)?;
    let config = store
        .blobs
        .get(&blob(CONFIG_FILE))
        .await?
        .ok_or_else(missing)?;
    let model_dir = state.config().model_dir();
    let voice = state
        .tts_pool()
        .run(move || voice_from_bytes(&model_dir, &onnx, &config))
        .await??;
    let voice = Arc::new(voice);
    cache_voice(model.id, voice.clone());
    Ok(voice)
}

/// Whether a model may be deployed: its voice imported, its consent check passed.
fn deployable(model: &Asset, doc: &Doc) -> Result<(), ApiError> {
    if model.status != AssetStatus::Succeeded {
        return Err(ApiError::bad_request(
            "ModelNotDeployable",
            format!(
                "model {:?} is {}: upload its voice files first",
                doc.id, model.status
            ),
        ));
    }
    let check = &model.properties["consentCheck"];
    if check["passed"].as_bool() != Some(true) {
        return Err(ApiError::bad_request(
            "DeployNotAllowed",
            format!(
                "model {:?} did not pass the consent check ({}; textScore {}, speakerSimilarity {})",
                doc.id,
                check["reason"].as_str().unwrap_or("no check"),
                check["textScore"],
                check["speakerSimilarity"]
            ),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EndpointBody {
    description: Option<String>,
    project_id: Option<String>,
    model_id: Option<String>,
}

/// `PUT /endpoints/{id}` `{description, projectId, modelId}` → 201 `Succeeded`, the voice
/// loaded. The id is the `deploymentId` synthesis names.
pub(crate) async fn put_endpoint(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    body: &[u8],
) -> Result<Asset, ApiError> {
    let b: EndpointBody = json_body(body)?;
    let project = required(b.project_id, "projectId")?;
    let model_id = required(b.model_id, "modelId")?;
    super::entities::check_project(state, resource, &project).await?;
    let (model, mdoc) = load(state, resource, Coll::Models, &model_id)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::bad_request(
                "InvalidParameterValue",
                format!("model {model_id:?} does not exist"),
            ),
            other => other,
        })?;
    deployable(&model, &mdoc)?;
    if load(state, resource, Coll::Endpoints, id).await.is_ok() {
        return Err(ApiError::Conflict(format!(
            "endpoint {id:?} exists already: delete it first"
        )));
    }
    voice(state, &model).await?;
    let mut doc = Doc::new(id);
    doc.fields.insert("projectId".into(), json!(project));
    doc.fields.insert("modelId".into(), json!(model_id));
    let mut new = new_asset(
        resource,
        Coll::Endpoints,
        &doc,
        b.description,
        &model.locale,
    );
    new.properties = json!({ "kind": "HighPerformance" });
    insert(state, Coll::Endpoints, new).await
}

/// The endpoint `deployment` of the caller's resource and its model, or 404.
async fn deployment(
    state: &AppState,
    resource: ResourceId,
    deployment: &str,
) -> Result<(Asset, Doc), ApiError> {
    let not_found = || {
        ApiError::NotFound(format!(
            "custom voice deployment {deployment:?} does not exist in region {}",
            state.region()
        ))
    };
    let (_, endpoint) = load(state, resource, Coll::Endpoints, deployment)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => not_found(),
            other => other,
        })?;
    if super::suspend::suspended(&endpoint) {
        return Err(ApiError::bad_request(
            "EndpointSuspended",
            format!(
                "custom voice deployment {deployment:?} is suspended: resume it with \
                 POST /customvoice/endpoints/{deployment}:resume"
            ),
        ));
    }
    let model_id = endpoint.field("modelId").unwrap_or_default();
    load(state, resource, Coll::Models, model_id)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => not_found(),
            other => other,
        })
}

/// Synthesis with a deployment: `body` is SSML whose `<voice name>` is the model's voice name,
/// or plain text (as Azure accepts for custom voices). Returns audio at the voice's rate.
pub(crate) async fn synthesize(
    state: &AppState,
    resource: ResourceId,
    deployment_id: &str,
    body: &[u8],
    max_bytes: usize,
) -> Result<Pcm, ApiError> {
    let (model, mdoc) = deployment(state, resource, deployment_id).await?;
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("InvalidSsml", "the request body is not valid UTF-8"))?;
    let voice_name = mdoc.field("voiceName").unwrap_or_default().to_owned();
    let segments = if text.trim_start().starts_with('<') {
        let limits = SsmlLimits {
            max_bytes,
            ..SsmlLimits::default()
        };
        let doc = ssml::parse(text, &limits)?;
        for s in &doc.segments {
            if let Segment::Speak { voice, .. } = s {
                if !voice.eq_ignore_ascii_case(&voice_name) {
                    return Err(ApiError::bad_request(
                        "InvalidVoice",
                        format!(
                            "deployment {deployment_id:?} speaks voice {voice_name:?}, not {voice:?}"
                        ),
                    ));
                }
            }
        }
        doc.segments
    } else {
        vec![Segment::Speak {
            voice: voice_name,
            text: text.trim().to_owned(),
            prosody: Prosody::default(),
        }]
    };
    let voice = voice(state, &model).await?;
    let pcm = state
        .tts_pool()
        .run(move || {
            let rate = voice.sample_rate();
            let mut samples = Vec::new();
            for s in &segments {
                match s {
                    Segment::Speak { text, prosody, .. } => {
                        samples.extend(voice.synthesize(text, prosody)?.samples);
                    }
                    Segment::Silence { ms } => {
                        samples.resize(samples.len() + (*ms as usize * rate as usize) / 1000, 0.0);
                    }
                }
            }
            Ok::<_, tandem_engines::EngineError>(Pcm {
                sample_rate: rate,
                samples,
            })
        })
        .await??;
    Ok(pcm)
}

/// The caller's deployed voices, for `GET /cognitiveservices/voices/list`.
pub(crate) async fn voices_list(
    state: &AppState,
    resource: ResourceId,
) -> Result<Vec<Value>, ApiError> {
    let models = all(state, resource, Coll::Models).await?;
    let mut out = Vec::new();
    for (_, edoc) in all(state, resource, Coll::Endpoints).await? {
        if super::suspend::suspended(&edoc) {
            continue;
        }
        let Some((model, mdoc)) = models
            .iter()
            .find(|(_, m)| Some(m.id.as_str()) == edoc.field("modelId"))
        else {
            continue;
        };
        let name = mdoc.field("voiceName").unwrap_or_default();
        let rate = model.properties["sampleRateHertz"]
            .as_u64()
            .unwrap_or(22_050);
        out.push(json!({
            "Name": format!("Microsoft Server Speech Text to Speech Voice ({}, {name})", model.locale),
            "DisplayName": name,
            "LocalName": name,
            "ShortName": name,
            "Gender": "Neutral",
            "Locale": model.locale,
            "LocaleName": model.locale,
            "SampleRateHertz": rate.to_string(),
            "VoiceType": "Neural",
            "Status": "GA",
            "DeploymentId": edoc.id,
            "ExtendedPropertyMap": { "IsCustomVoice": "True", "ModelId": mdoc.id },
        }));
    }
    Ok(out)
}
