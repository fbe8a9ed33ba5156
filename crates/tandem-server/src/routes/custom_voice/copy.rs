//! A voice model copied to another region through the generic copy machinery
//! (`routes/custom_speech/copy/`): `POST /customvoice/models/{id}:copyto` `{targetSubscriptionKey,
//! targetRegion?}` answers 202 with `Operation-Location` (`GET /customvoice/operations/{id}`),
//! and the copy operation runs like a Custom Speech model's: chunked, sha256-verified, staged,
//! and committed only once everything checks out.
//!
//! [`VoiceModelCopy`] carries what re-training and re-deploying the voice needs: the model's
//! `.onnx` and `.onnx.json`, its training set (every WAV, with the script in the set's
//! document), its consent (the recording, the scores and the speaker embedding), and their
//! project. The target test-speaks the voice (as an upload does), creates the project, consent
//! and training set (or reuses them when a copy of another model brought the very same ones),
//! recomputes the model's consent check from what it now holds, and only then creates the
//! model row. A model keeps its client id in the target (Azure ids are the client's), so the
//! copy's target id is the row id of that client id in the target resource; a copy whose id is
//! taken by another model there fails with `ModelExists`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tandem_core::ResourceId;
use tandem_engines::EngineError;
use tandem_store::{asset_file_key, Asset, AssetKind, AssetStatus, NewAsset};
use uuid::Uuid;

use super::consent_check::round4;
use super::models::{consent_check, model_error, voice_from_bytes, CONFIG_FILE, ONNX_FILE};
use super::{check_locale, entity_json, insert, json_body, load, required, row_id, Coll, Doc};
use crate::routes::custom_speech::azure_time;
use crate::routes::custom_speech::copy::{
    copy_op_doc, create_operation, find_key, start_operation, CopyError, CopyKind, Manifest,
    OpTarget, Package,
};
use crate::{ApiError, AppState};

/// The version of [`Bundle`] this build writes and reads.
const BUNDLE_FORMAT: u32 = 1;

/// An entity the model depends on, as the source keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Related {
    doc: Doc,
    #[serde(default)]
    description: Option<String>,
    locale: String,
    status: String,
    properties: Value,
}

impl Related {
    fn of(asset: &Asset, doc: Doc) -> Related {
        Related {
            doc,
            description: asset.description.clone(),
            locale: asset.locale.clone(),
            status: asset.status.as_str().to_owned(),
            properties: asset.properties.clone(),
        }
    }
}

/// The manifest's document of a voice model copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bundle {
    format: u32,
    model: Doc,
    project: Related,
    consent: Related,
    training_set: Related,
}

fn bundle(manifest: &Manifest) -> Result<Bundle, CopyError> {
    let b: Bundle = serde_json::from_value(manifest.doc.clone()).map_err(|e| {
        CopyError::invalid(
            "InvalidModel",
            format!("the voice model's copy document is unreadable: {e}"),
        )
    })?;
    if b.format > BUNDLE_FORMAT {
        return Err(CopyError::invalid(
            "InvalidModel",
            format!(
                "the voice copy format {} is newer than this region's ({BUNDLE_FORMAT})",
                b.format
            ),
        ));
    }
    Ok(b)
}

/// The consent's audio file id.
fn consent_audio(doc: &Doc) -> Option<Uuid> {
    serde_json::from_value(doc.internal.get("audioFile")?.clone()).ok()
}

/// The training set's WAV file ids.
fn training_files(doc: &Doc) -> Vec<Uuid> {
    doc.internal
        .get("files")
        .and_then(Value::as_array)
        .map(|files| {
            files
                .iter()
                .filter_map(|f| serde_json::from_value(f["id"].clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Custom voice models, with their consent, training set and project.
pub(crate) struct VoiceModelCopy;

#[async_trait::async_trait]
impl CopyKind for VoiceModelCopy {
    fn kind(&self) -> AssetKind {
        AssetKind::VoiceModel
    }

    async fn package(&self, state: &AppState, asset: &Asset) -> Result<Package, CopyError> {
        let model = Doc::read(asset)?;
        if asset.status != AssetStatus::Succeeded {
            return Err(CopyError::invalid(
                "InvalidModel",
                format!(
                    "model {:?} is {}: upload its voice files before copying it",
                    model.id, asset.status
                ),
            ));
        }
        let check = &asset.properties["consentCheck"];
        if check["passed"].as_bool() != Some(true) {
            return Err(CopyError::invalid(
                "DeployNotAllowed",
                format!(
                    "model {:?} did not pass its consent check ({}): a voice is copied only with \
                     a passing consent",
                    model.id,
                    check["reason"].as_str().unwrap_or("no check")
                ),
            ));
        }
        let resource = asset.resource_id;
        let related = |coll: Coll| {
            let id = match coll {
                Coll::Projects => model.field("projectId"),
                Coll::Consents => model.field("consentId"),
                _ => model.field("trainingSetId"),
            }
            .unwrap_or_default()
            .to_owned();
            async move {
                load(state, resource, coll, &id).await.map_err(|e| match e {
                    ApiError::NotFound(_) => CopyError::invalid(
                        "InvalidModel",
                        format!("the model's {} {id:?} no longer exists", coll.name()),
                    ),
                    other => other.into(),
                })
            }
        };
        let (project, pdoc) = related(Coll::Projects).await?;
        let (consent, cdoc) = related(Coll::Consents).await?;
        let (set, sdoc) = related(Coll::TrainingSets).await?;
        let key = |a: &Asset, file: Uuid| (file, asset_file_key(resource, a.id, file));
        let mut files = vec![key(asset, ONNX_FILE), key(asset, CONFIG_FILE)];
        let audio = consent_audio(&cdoc).ok_or_else(|| {
            CopyError::Internal(format!("consent {:?} has no audio file", cdoc.id))
        })?;
        files.push(key(&consent, audio));
        files.extend(training_files(&sdoc).into_iter().map(|f| key(&set, f)));
        let doc = Bundle {
            format: BUNDLE_FORMAT,
            model,
            project: Related::of(&project, pdoc),
            consent: Related::of(&consent, cdoc),
            training_set: Related::of(&set, sdoc),
        };
        let doc =
            serde_json::to_value(&doc).map_err(|e| CopyError::Internal(format!("bundle: {e}")))?;
        Ok(Package { files, doc })
    }

    fn admit(&self, _state: &AppState, manifest: &Manifest) -> Result<(), CopyError> {
        let b = bundle(manifest)?;
        check_locale(Some(&manifest.locale))?;
        super::check_client_id(&b.model.id)?;
        let has = |id: Uuid| manifest.files.iter().any(|f| f.id == id);
        let mut needed = vec![ONNX_FILE, CONFIG_FILE];
        needed.extend(consent_audio(&b.consent.doc));
        needed.extend(training_files(&b.training_set.doc));
        if consent_audio(&b.consent.doc).is_none()
            || needed.len() != manifest.files.len()
            || !needed.into_iter().all(has)
        {
            return Err(CopyError::invalid(
                "InvalidModel",
                "a voice model copy carries exactly its voice files, its consent recording and \
                 its training audio",
            ));
        }
        Ok(())
    }

    fn entity_files(&self, _manifest: &Manifest) -> Vec<Uuid> {
        vec![ONNX_FILE, CONFIG_FILE]
    }

    fn is_copy(&self, existing: &Asset, manifest: &Manifest) -> bool {
        let from = &existing.properties["copiedFrom"];
        from["region"].as_str() == Some(manifest.source_region.as_str())
            && from["modelId"] == manifest.doc["model"]["id"]
    }

    async fn finish(
        &self,
        state: &AppState,
        resource: ResourceId,
        asset: Uuid,
        manifest: &Manifest,
        files: &[(Uuid, Bytes)],
    ) -> Result<(Value, Value), CopyError> {
        let b = bundle(manifest)?;
        if row_id(resource, AssetKind::VoiceModel, &b.model.id) != asset {
            return Err(CopyError::invalid(
                "InvalidParameterValue",
                "the copy's target id is not the model's id in the target resource",
            ));
        }
        let file = |id: Uuid| {
            files
                .iter()
                .find(|(f, _)| *f == id)
                .map(|(_, bytes)| bytes.clone())
                .ok_or_else(|| {
                    CopyError::invalid("InvalidModel", format!("file {id} was not sent"))
                })
        };
        // `commit` checks every whole file while this runs; the consent's and training set's
        // files are checked here too, before a row names them (they are small).
        let checked = |id: Uuid| {
            let bytes = file(id)?;
            let plan = manifest.files.iter().find(|p| p.id == id).ok_or_else(|| {
                CopyError::invalid("InvalidModel", format!("file {id} has no plan"))
            })?;
            plan.check_file(&bytes)
                .map_err(|e| CopyError::invalid("InvalidChecksum", e))?;
            Ok::<_, CopyError>(bytes)
        };
        // The voice is validated here as an upload is: it loads against its config and
        // test-speaks a sentence that must come out as speech.
        let (onnx, config) = (file(ONNX_FILE)?, file(CONFIG_FILE)?);
        let model_dir = state.config().model_dir();
        let (rate, report) = state
            .tts_pool()
            .run(move || {
                let voice = voice_from_bytes(&model_dir, &onnx, &config)?;
                let report = voice.validate()?;
                Ok::<_, EngineError>((voice.sample_rate(), report))
            })
            .await?
            .map_err(model_error)?;
        let from = &manifest.source_region;
        ensure(state, resource, Coll::Projects, &b.project, &[], from).await?;
        let audio = consent_audio(&b.consent.doc)
            .ok_or_else(|| CopyError::invalid("InvalidModel", "the consent has no recording"))?;
        ensure(
            state,
            resource,
            Coll::Consents,
            &b.consent,
            &[(audio, checked(audio)?)],
            from,
        )
        .await?;
        let set_files = training_files(&b.training_set.doc)
            .into_iter()
            .map(|f| Ok((f, checked(f)?)))
            .collect::<Result<Vec<_>, CopyError>>()?;
        ensure(
            state,
            resource,
            Coll::TrainingSets,
            &b.training_set,
            &set_files,
            from,
        )
        .await?;
        // The consent check again, from what this region now holds.
        let check = consent_check(state, resource, &b.model).await?;
        if check["passed"].as_bool() != Some(true) {
            return Err(CopyError::invalid(
                "DeployNotAllowed",
                format!(
                    "the copied model does not pass the consent check here: {}",
                    check["reason"].as_str().unwrap_or("unknown")
                ),
            ));
        }
        let mut properties = manifest.properties.clone();
        if !properties.is_object() {
            properties = json!({});
        }
        properties["consentCheck"] = check;
        properties["sampleRateHertz"] = json!(rate);
        properties["validation"] = json!({
            "sentence": tandem_engines::tts::piper::VALIDATION_SENTENCE,
            "durationInSeconds": round4(report.duration_secs),
            "voicedSeconds": round4(report.voiced_secs),
            "realTimeFactor": round4(report.rtf),
        });
        properties["copiedFrom"] = json!({ "region": from, "modelId": b.model.id });
        Ok((properties, b.model.to_value()))
    }

    fn render(&self, base: &str, asset: &Asset) -> Result<Value, CopyError> {
        let doc = Doc::read(asset)?;
        let mut v = entity_json(asset, &doc);
        let origin = base.rsplit_once("/speechtotext/").map_or(base, |(o, _)| o);
        v["self"] = json!(format!("{origin}/customvoice/models/{}", doc.id));
        Ok(v)
    }
}

/// Whether `existing` is the entity `wanted` describes: a project always is (it only holds
/// the others); a consent is when it is the same analysed recording; a training set when it
/// holds the same utterances.
pub(super) fn same(coll: Coll, existing: &Doc, wanted: &Doc) -> bool {
    let internal = |d: &Doc, k: &str| d.internal.get(k).cloned();
    match coll {
        Coll::Projects => true,
        Coll::Consents => {
            internal(existing, "embedding") == internal(wanted, "embedding")
                && existing.field("projectId") == wanted.field("projectId")
        }
        _ => {
            internal(existing, "files") == internal(wanted, "files")
                && existing.field("projectId") == wanted.field("projectId")
        }
    }
}

/// Creates the related entity in the target (its files first, then its row), or reuses the
/// one there when it is the same.
async fn ensure(
    state: &AppState,
    resource: ResourceId,
    coll: Coll,
    wanted: &Related,
    files: &[(Uuid, Bytes)],
    from: &str,
) -> Result<(), CopyError> {
    let id = &wanted.doc.id;
    super::check_client_id(id)?;
    let row = row_id(resource, coll.kind(), id);
    let store = state.store();
    if let Some(existing) = store
        .meta
        .get_asset(resource, coll.kind(), row)
        .await
        .map_err(ApiError::from)?
    {
        if same(coll, &Doc::read(&existing)?, &wanted.doc) {
            return Ok(());
        }
        return Err(CopyError::invalid(
            "InvalidParameterValue",
            format!(
                "the target resource has another {} {id:?}: delete it, or copy into another resource",
                coll.name()
            ),
        ));
    }
    for (file, bytes) in files {
        store
            .blobs
            .put(&asset_file_key(resource, row, *file), bytes.clone())
            .await
            .map_err(ApiError::from)?;
    }
    let mut properties = wanted.properties.clone();
    if coll != Coll::Projects {
        if !properties.is_object() {
            properties = json!({});
        }
        properties["copiedFrom"] = json!({ "region": from, "id": id });
    }
    let new = NewAsset {
        id: row,
        resource_id: resource,
        kind: coll.kind(),
        status: wanted
            .status
            .parse()
            .map_err(|e: String| CopyError::invalid("InvalidModel", e))?,
        display_name: id.clone(),
        description: wanted.description.clone(),
        locale: wanted.locale.clone(),
        properties,
        doc: wanted.doc.to_value(),
    };
    insert(state, coll, new).await?;
    tracing::info!(kind = %coll.kind(), %row, "copied a voice model's {}", coll.name());
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CopyBody {
    target_subscription_key: Option<String>,
    target_region: Option<String>,
}

/// `http://host` of this request.
fn origin(headers: &axum::http::HeaderMap, state: &AppState) -> String {
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| state.config().listen.to_string());
    format!("http://{host}")
}

/// `POST /customvoice/models/{id}:copyto?api-version=` `{targetSubscriptionKey, targetRegion?}`:
/// starts the copy (the key is looked up here and in every peer, by its sha256 only) and
/// answers 202 with the operation, its `Operation-Location` and `Operation-Id`.
pub(crate) async fn copy_to(
    state: &AppState,
    resource: ResourceId,
    id: &str,
    body: &[u8],
    headers: &axum::http::HeaderMap,
    version: &str,
) -> Result<Response, ApiError> {
    let b: CopyBody = json_body(body)?;
    let key = required(b.target_subscription_key, "targetSubscriptionKey")?;
    let (asset, doc) = load(state, resource, Coll::Models, id).await?;
    VoiceModelCopy.package(state, &asset).await?;
    let owner = find_key(state, &key).await?;
    if let Some(region) = b.target_region.filter(|r| !r.trim().is_empty()) {
        if !region.trim().eq_ignore_ascii_case(owner.region.as_str()) {
            return Err(ApiError::bad_request(
                "InvalidParameterValue",
                format!(
                    "targetSubscriptionKey is a key of region {}, not {region:?}",
                    owner.region
                ),
            ));
        }
    }
    if owner.region == *state.region() && owner.resource == resource {
        return Err(ApiError::bad_request(
            "InvalidParameterValue",
            "the target is this model's own resource: copy to another resource or region",
        ));
    }
    let origin = origin(headers, state);
    let target = OpTarget {
        region: owner.region.to_string(),
        resource: owner.resource,
        asset: row_id(owner.resource, AssetKind::VoiceModel, &doc.id),
        grant: owner.grant,
    };
    let op = create_operation(state, &asset, target, version, &origin).await?;
    // Detached: the operation reports through GET /customvoice/operations/{id}.
    drop(start_operation(state, resource, op.id));
    tracing::info!(op = %op.id, model = %doc.id, to = %owner.region, "voice model copy started");
    let location = format!(
        "{origin}/customvoice/operations/{}?api-version={version}",
        op.id
    );
    let mut resp = (StatusCode::ACCEPTED, Json(op_json(&op)?)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert("operation-location", v);
    }
    if let Ok(v) = HeaderValue::from_str(&op.id.to_string()) {
        h.insert("operation-id", v);
    }
    Ok(resp)
}

/// A voice copy operation as Azure's custom voice operations look: `id`, `status`, times,
/// and once it ends `resourceLocation` (the model in the target) or `error`.
fn op_json(op: &Asset) -> Result<Value, ApiError> {
    let doc = copy_op_doc(op)?;
    let mut v = json!({
        "id": op.id,
        "kind": "ModelCopy",
        "status": op.status.as_str(),
        "createdDateTime": azure_time(op.created_at),
        "lastActionDateTime": azure_time(op.last_action_at),
        "properties": { "targetRegion": doc.target_region },
    });
    if let Some(link) = &doc.result {
        v["resourceLocation"] = json!(link);
        if let Some(model) = link.rsplit('/').next() {
            v["properties"]["modelId"] = json!(model);
        }
    }
    if let Some(error) = &doc.error {
        v["error"] = error.clone();
    }
    Ok(v)
}

/// `GET /customvoice/operations/{id}`: a voice model copy of the caller's resource.
pub(crate) async fn operation(
    state: &AppState,
    resource: ResourceId,
    id: &str,
) -> Result<Value, ApiError> {
    let not_found = || ApiError::NotFound(format!("operation {id:?} not found"));
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    let op = state
        .store()
        .meta
        .get_asset(resource, AssetKind::CopyOperation, uuid)
        .await?
        .ok_or_else(not_found)?;
    if copy_op_doc(&op)?.asset_kind != AssetKind::VoiceModel.as_str() {
        return Err(not_found());
    }
    op_json(&op)
}
