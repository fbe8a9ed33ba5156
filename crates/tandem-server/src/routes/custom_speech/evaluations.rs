//! `/evaluations`: Evaluations_Create, _List, _Get, _Update, _Delete, _ListFiles, _GetFile, and
//! the bytes of the result file.
//!
//! An evaluation recognizes every utterance of an Acoustic dataset with two models (any base
//! model, or a custom one of the same resource, recognized with its own base's recognizer) in
//! the background, scores both against the
//! dataset's `trans.txt` with [`tandem_engines::text::word_errors`], writes a side-by-side
//! result file (`EvaluationDetails`) as a blob of the evaluation, and only then marks it
//! `Succeeded` with Azure's counts. Word error rates are fractions (0.25 = 25 %), as
//! [`tandem_engines::text::WerStats::wer`] computes them.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tandem_core::ResourceId;
use tandem_engines::text::{parse_trans_txt, word_errors, WerStats};
use tandem_engines::{AdaptedModel, RecognizeOptions, Recognizer};
use tandem_store::{
    asset_file_key, Asset, AssetKind, AssetStatus, AssetUpdate, NewAsset, StoreError,
};
use uuid::Uuid;

use super::base_models::find_base;
use super::create::{custom_properties, remove_blobs, DATASET_LOCALES};
use super::crud::{self, Entity};
use super::entity::dataset_doc;
use super::{
    azure_time, display_name, json_body, page_json, read_doc, ref_id, train, Cx, EntityRef, Paging,
};
use crate::{ApiError, AppState, V3Error};

type V3Result<T = Response> = Result<T, V3Error>;

/// The version of [`EvaluationDoc`] this build writes and reads.
pub(crate) const EVALUATION_DOC_FORMAT: u32 = 1;

/// The name of the result file.
const DETAILS_NAME: &str = "evaluation.json";

/// One of the two models compared.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EvalModel {
    /// The model's id.
    pub id: Uuid,
    /// Whether it is the base model (`/models/base/{id}`), else a custom model.
    pub base: bool,
}

/// The result file, once written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DetailsFile {
    /// Blob (file) id.
    pub id: Uuid,
    /// Size in bytes.
    pub size: u64,
}

/// An evaluation's [`Asset::doc`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EvaluationDoc {
    /// [`EVALUATION_DOC_FORMAT`] when written.
    pub format: u32,
    pub model1: EvalModel,
    pub model2: EvalModel,
    /// The Acoustic dataset evaluated on.
    pub dataset: Uuid,
    /// The customer's `customProperties`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub custom_properties: Map<String, Value>,
    /// The side-by-side result file, once evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<DetailsFile>,
}

pub(crate) fn evaluation_doc(asset: &Asset) -> Result<EvaluationDoc, ApiError> {
    read_doc(asset, "evaluation", EVALUATION_DOC_FORMAT)
}

fn model_url(cx: &Cx, m: &EvalModel) -> String {
    if m.base {
        cx.url(&format!("/models/base/{}", m.id))
    } else {
        cx.url(&format!("/models/{}", m.id))
    }
}

/// Azure's `Evaluation` entity.
fn evaluation_json(cx: &Cx, asset: &Asset, doc: &EvaluationDoc) -> Value {
    let this = cx.url(&format!("/evaluations/{}", asset.id));
    let mut v = json!({
        "self": this,
        "model1": { "self": model_url(cx, &doc.model1) },
        "model2": { "self": model_url(cx, &doc.model2) },
        "dataset": { "self": cx.url(&format!("/datasets/{}", doc.dataset)) },
        "links": { "files": format!("{this}/files") },
        "properties": asset.properties,
        "lastActionDateTime": azure_time(asset.last_action_at),
        "status": asset.status.as_str(),
        "createdDateTime": azure_time(asset.created_at),
        "locale": asset.locale,
        "displayName": asset.display_name,
    });
    if let Some(d) = asset.description.as_deref().filter(|d| !d.is_empty()) {
        v["description"] = json!(d);
    }
    if !doc.custom_properties.is_empty() {
        v["customProperties"] = Value::Object(doc.custom_properties.clone());
    }
    v
}

fn details_json(cx: &Cx, asset: &Asset, f: &DetailsFile) -> Value {
    let this = cx.url(&format!("/evaluations/{}/files/{}", asset.id, f.id));
    json!({
        "self": this,
        "name": DETAILS_NAME,
        "kind": "EvaluationDetails",
        "properties": { "size": f.size },
        "createdDateTime": azure_time(asset.last_action_at),
        "links": { "contentUrl": format!("{this}/content") },
    })
}

fn bad(code: &'static str, message: impl Into<String>) -> V3Error {
    V3Error(ApiError::bad_request(code, message))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    model1: Option<EntityRef>,
    model2: Option<EntityRef>,
    dataset: Option<EntityRef>,
    locale: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    custom_properties: Option<Value>,
}

/// Resolves `model1`/`model2`: the base model, or a Succeeded custom model of the caller.
async fn resolve_model(
    state: &AppState,
    cx: &Cx,
    which: &str,
    r: Option<EntityRef>,
) -> V3Result<EvalModel> {
    let url = r.and_then(|r| r.url).unwrap_or_default();
    let missing = || bad("InvalidModel", format!("{which} {url:?} does not exist"));
    if let Some(id) = ref_id(&url, "models/base") {
        if find_base(state, id)?.is_none() {
            return Err(missing());
        }
        return Ok(EvalModel { id, base: true });
    }
    let id = ref_id(&url, "models").ok_or_else(missing)?;
    let asset = state
        .store()
        .meta
        .get_asset(cx.resource(), AssetKind::Model, id)
        .await?
        .ok_or_else(missing)?;
    if asset.status != AssetStatus::Succeeded {
        return Err(bad(
            "InvalidModel",
            format!("{which} {id} is {}, not Succeeded", asset.status),
        ));
    }
    Ok(EvalModel { id, base: false })
}

/// `POST /evaluations`: checks the models and the dataset, stores the evaluation as
/// `NotStarted` and runs it in the background.
pub(crate) async fn create(State(state): State<AppState>, cx: Cx, body: Bytes) -> V3Result {
    let b: CreateBody = json_body(&body)?;
    let name = display_name(b.display_name)?;
    let custom = custom_properties(b.custom_properties)?;
    let locale = b
        .locale
        .ok_or_else(|| bad("InvalidParameterValue", "locale is required"))?;
    let locale = DATASET_LOCALES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(locale.trim()))
        .ok_or_else(|| {
            bad(
                "InvalidLocale",
                format!("locale {locale:?} is not supported for evaluations"),
            )
        })?;
    let model1 = resolve_model(&state, &cx, "model1", b.model1).await?;
    let model2 = resolve_model(&state, &cx, "model2", b.model2).await?;
    let url = b.dataset.and_then(|r| r.url).unwrap_or_default();
    let missing = || bad("InvalidDataset", format!("dataset {url:?} does not exist"));
    let dataset_id = ref_id(&url, "datasets").ok_or_else(missing)?;
    let dataset = state
        .store()
        .meta
        .get_asset(cx.resource(), AssetKind::Dataset, dataset_id)
        .await?
        .ok_or_else(missing)?;
    let kind = dataset_doc(&dataset)?.kind;
    if kind != "Acoustic" {
        return Err(bad(
            "InvalidDataset",
            format!("dataset {dataset_id} is {kind}: evaluate on an Acoustic dataset"),
        ));
    }
    if dataset.status != AssetStatus::Succeeded {
        return Err(bad(
            "InvalidDataset",
            format!("dataset {dataset_id} is {}, not Succeeded", dataset.status),
        ));
    }
    if !dataset.locale.eq_ignore_ascii_case(locale) {
        return Err(bad(
            "InvalidDataset",
            format!(
                "dataset {dataset_id} is {}, the evaluation {locale}",
                dataset.locale
            ),
        ));
    }
    let doc = EvaluationDoc {
        format: EVALUATION_DOC_FORMAT,
        model1,
        model2,
        dataset: dataset_id,
        custom_properties: custom,
        details: None,
    };
    let new = NewAsset {
        id: Uuid::new_v4(),
        resource_id: cx.resource(),
        kind: AssetKind::Evaluation,
        status: AssetStatus::NotStarted,
        display_name: name,
        description: b.description.filter(|d| !d.is_empty()),
        locale: (*locale).to_owned(),
        properties: json!({}),
        doc: serde_json::to_value(&doc)
            .map_err(|e| ApiError::Internal(format!("evaluation document: {e}")))?,
    };
    let asset = state.store().meta.create_asset(new).await?;
    spawn(state.clone(), cx.resource(), asset.id, doc.clone());
    Ok(super::created(evaluation_json(&cx, &asset, &doc)))
}

/// The evaluation entity, for the shared handlers of [`crud`].
pub(crate) struct Evaluations;

impl Entity for Evaluations {
    const KIND: AssetKind = AssetKind::Evaluation;
    const NAME: &'static str = "evaluation";
    const COLLECTION: &'static str = "/evaluations";
    type Doc = EvaluationDoc;
    fn doc(asset: &Asset) -> Result<EvaluationDoc, ApiError> {
        evaluation_doc(asset)
    }
    fn json(cx: &Cx, asset: &Asset, doc: &EvaluationDoc) -> Value {
        evaluation_json(cx, asset, doc)
    }
    fn custom_properties(doc: &mut EvaluationDoc) -> &mut Map<String, Value> {
        &mut doc.custom_properties
    }
}

/// `DELETE /evaluations/{id}`: 204 (also when there is none). A running evaluation finds
/// itself gone when it finishes and removes what it wrote.
pub(crate) async fn delete(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
) -> V3Result<StatusCode> {
    crud::delete::<Evaluations>(&state, &cx, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /evaluations/{id}/files`: the result file, once there is one.
pub(crate) async fn files(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> V3Result<Json<Value>> {
    let paging = Paging::parse(query.as_deref())?;
    let (asset, doc) = crud::load::<Evaluations>(&state, &cx, &id).await?;
    let all: Vec<Value> = doc
        .details
        .iter()
        .map(|f| details_json(&cx, &asset, f))
        .collect();
    let total = all.len() as u64;
    let skip = usize::try_from(paging.skip).unwrap_or(usize::MAX);
    let values = all
        .into_iter()
        .skip(skip)
        .take(paging.top as usize)
        .collect();
    let list_url = cx.url(&format!("/evaluations/{}/files", asset.id));
    Ok(Json(page_json(values, total, paging, &list_url)))
}

fn find_file<'a>(doc: &'a EvaluationDoc, file: &str) -> V3Result<&'a DetailsFile> {
    Uuid::parse_str(file)
        .ok()
        .and_then(|f| doc.details.as_ref().filter(|d| d.id == f))
        .ok_or_else(|| V3Error(ApiError::NotFound(format!("file {file} not found"))))
}

/// `GET /evaluations/{id}/files/{file}`
pub(crate) async fn file(
    State(state): State<AppState>,
    cx: Cx,
    Path((id, file)): Path<(String, String)>,
) -> V3Result<Json<Value>> {
    let (asset, doc) = crud::load::<Evaluations>(&state, &cx, &id).await?;
    let f = find_file(&doc, &file)?;
    Ok(Json(details_json(&cx, &asset, f)))
}

/// `GET /evaluations/{id}/files/{file}/content`: the result file's JSON.
pub(crate) async fn content(
    State(state): State<AppState>,
    cx: Cx,
    Path((id, file)): Path<(String, String)>,
) -> V3Result {
    let (asset, doc) = crud::load::<Evaluations>(&state, &cx, &id).await?;
    let f = find_file(&doc, &file)?;
    let bytes = state
        .store()
        .blobs
        .get(&asset_file_key(cx.resource(), asset.id, f.id))
        .await?
        .ok_or_else(|| ApiError::Internal(format!("evaluation {} lost its results", asset.id)))?;
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"evaluation.json\""),
    );
    Ok(resp)
}

// ---------------------------------------------------------------------------------------------
// The background job.

/// Why an evaluation failed: `properties.error`.
struct Failure {
    code: &'static str,
    message: String,
}

impl Failure {
    fn internal(message: impl Into<String>) -> Self {
        Self {
            code: "InternalError",
            message: message.into(),
        }
    }
}

fn storage(e: impl std::fmt::Display) -> Failure {
    Failure::internal(format!("storage: {e}"))
}

/// Counts of one model over the whole dataset.
#[derive(Default)]
struct Totals {
    words: WerStats,
    sentences: usize,
    sentence_errors: usize,
}

impl Totals {
    fn add(&mut self, s: &WerStats) {
        self.words.add(s);
        self.sentences += 1;
        if s.errors() > 0 {
            self.sentence_errors += 1;
        }
    }

    fn write(&self, props: &mut Value, n: u8) {
        let w = &self.words;
        let ser = if self.sentences == 0 {
            0.0
        } else {
            self.sentence_errors as f64 / self.sentences as f64
        };
        let correct = w.reference_words - w.substitutions - w.deletions;
        props[format!("wordErrorRate{n}")] = json!(w.wer());
        props[format!("sentenceErrorRate{n}")] = json!(ser);
        props[format!("sentenceCount{n}")] = json!(self.sentences);
        props[format!("wordCount{n}")] = json!(w.reference_words);
        props[format!("correctWordCount{n}")] = json!(correct);
        props[format!("wordSubstitutionCount{n}")] = json!(w.substitutions);
        props[format!("wordDeletionCount{n}")] = json!(w.deletions);
        props[format!("wordInsertionCount{n}")] = json!(w.insertions);
    }
}

fn errors_json(s: &WerStats) -> Value {
    json!({
        "wordCount": s.reference_words,
        "substitutions": s.substitutions,
        "deletions": s.deletions,
        "insertions": s.insertions,
        "wordErrorRate": s.wer(),
    })
}

/// Starts evaluation `id` on a background task ([`run`]).
pub(crate) fn spawn(state: AppState, resource: ResourceId, id: Uuid, doc: EvaluationDoc) {
    tokio::spawn(async move {
        // Not run here: another node holds the job (it runs it) or this node runs it already.
        let _ = run(&state, resource, id, doc).await;
    });
}

/// Runs evaluation `id` and records the outcome, on the node that holds the job's lease
/// ([`crate::jobs`]); one that another node runs, or that finished meanwhile, is left alone.
pub(crate) async fn run(
    state: &AppState,
    resource: ResourceId,
    id: Uuid,
    doc: EvaluationDoc,
) -> Result<(), crate::jobs::NotRun> {
    let job = format!("evaluate/{resource}/{id}");
    crate::jobs::run_leased(state, &job, || async {
        if !super::resume::unfinished_one(state, resource, AssetKind::Evaluation, id).await {
            return;
        }
        let started = Instant::now();
        let outcome = evaluate(state, resource, id, &doc).await;
        let secs = started.elapsed().as_secs_f64();
        if let Err(e) = finish(state, resource, id, doc, outcome).await {
            tracing::warn!(evaluation = %id, error = %e, "could not record an evaluation's outcome");
        } else {
            tracing::info!(evaluation = %id, secs, "evaluation finished");
        }
    })
    .await
}

/// The recognizer of a base or custom model (its base's), with the adapted model of a custom
/// one. A base loaded on demand is pulled and loaded first.
async fn recognizer_of(
    state: &AppState,
    resource: ResourceId,
    m: &EvalModel,
) -> Result<(Arc<dyn Recognizer>, Option<Arc<AdaptedModel>>), Failure> {
    let adapted = adapted(state, resource, m).await?;
    let base = match &adapted {
        Some(a) => a.base_model().to_owned(),
        None => {
            find_base(state, m.id)
                .map_err(|e| Failure::internal(e.to_string()))?
                .ok_or_else(|| Failure {
                    code: "InvalidModel",
                    message: format!("base model {} is not available in this region", m.id),
                })?
                .name
        }
    };
    let recognizer = state
        .engines()
        .ok_or_else(|| Failure::internal("the speech engines are not loaded"))?
        .bases
        .get(&base)
        .await
        .map_err(|e| Failure {
            code: "InvalidModel",
            message: e.to_string(),
        })?;
    Ok((recognizer, adapted))
}

/// The adapted model of a custom model, `None` for a base model.
async fn adapted(
    state: &AppState,
    resource: ResourceId,
    m: &EvalModel,
) -> Result<Option<Arc<AdaptedModel>>, Failure> {
    if m.base {
        return Ok(None);
    }
    let asset = state
        .store()
        .meta
        .get_asset(resource, AssetKind::Model, m.id)
        .await
        .map_err(storage)?
        .ok_or_else(|| Failure {
            code: "InvalidModel",
            message: format!("model {} was deleted before the evaluation ran", m.id),
        })?;
    let parsed = train::load_artifact(state, &asset)
        .await
        .map_err(|e| Failure::internal(e.to_string()))?;
    Ok(Some(parsed))
}

/// Marks the evaluation `Running`, evaluates, writes the result file; returns the file and
/// the properties, or `None` when the evaluation was deleted first.
async fn evaluate(
    state: &AppState,
    resource: ResourceId,
    id: Uuid,
    doc: &EvaluationDoc,
) -> Result<Option<(DetailsFile, Value)>, Failure> {
    let meta = &state.store().meta;
    let running = AssetUpdate {
        status: Some(AssetStatus::Running),
        ..AssetUpdate::default()
    };
    match meta
        .update_asset(resource, AssetKind::Evaluation, id, running)
        .await
    {
        Ok(_) => {}
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(storage(e)),
    }
    let dataset = meta
        .get_asset(resource, AssetKind::Dataset, doc.dataset)
        .await
        .map_err(storage)?
        .ok_or_else(|| Failure {
            code: "InvalidDataset",
            message: format!(
                "dataset {} was deleted before the evaluation ran",
                doc.dataset
            ),
        })?;
    let ds = dataset_doc(&dataset).map_err(|e| Failure::internal(e.to_string()))?;
    let blob = |file: Uuid| asset_file_key(resource, doc.dataset, file);
    let trans = ds
        .files
        .iter()
        .find(|f| f.kind == "AcousticDataTranscriptionV2")
        .ok_or_else(|| Failure {
            code: "InvalidDataset",
            message: format!("dataset {} has no transcriptions", doc.dataset),
        })?;
    let trans = state
        .store()
        .blobs
        .get(&blob(trans.id))
        .await
        .map_err(storage)?
        .ok_or_else(|| Failure::internal("the dataset lost its trans.txt"))?;
    let mut utterances = Vec::new();
    for (name, reference) in parse_trans_txt(&String::from_utf8_lossy(&trans)) {
        let Some(f) = ds
            .files
            .iter()
            .find(|f| f.kind == "Audio" && f.name == name)
        else {
            continue;
        };
        let wav = state
            .store()
            .blobs
            .get(&blob(f.id))
            .await
            .map_err(storage)?
            .ok_or_else(|| Failure::internal(format!("the dataset lost {name}")))?;
        utterances.push((name, reference, wav));
    }
    if utterances.is_empty() {
        return Err(Failure {
            code: "InvalidDataset",
            message: format!("dataset {} has no transcribed audio", doc.dataset),
        });
    }
    let models = [
        recognizer_of(state, resource, &doc.model1).await?,
        recognizer_of(state, resource, &doc.model2).await?,
    ];
    let opts = RecognizeOptions {
        language: dataset.locale.clone(),
        audio_ctx: state.config().whisper_audio_ctx,
    };
    let (files, props) = tokio::task::spawn_blocking(move || {
        let mut totals = [Totals::default(), Totals::default()];
        let mut files = Vec::with_capacity(utterances.len());
        for (name, reference, wav) in utterances {
            let pcm = tandem_audio::decode_wav(&wav).map_err(|e| Failure {
                code: "InvalidDataset",
                message: format!("{name}: {e}"),
            })?;
            let pcm = tandem_audio::resample(&pcm, 16_000);
            let mut hyps = Vec::with_capacity(2);
            let mut errs = Vec::with_capacity(2);
            for (i, (recognizer, m)) in models.iter().enumerate() {
                let text = recognizer
                    .recognize_with_model(&pcm.samples, &opts, m.as_deref())
                    .map_err(|e| Failure::internal(format!("recognizing {name}: {e}")))?
                    .text;
                let s = word_errors(&reference, &text);
                totals[i].add(&s);
                hyps.push(text);
                errs.push(s);
            }
            files.push(json!({
                "name": name,
                "reference": reference,
                "hypothesis1": hyps[0],
                "hypothesis2": hyps[1],
                "errors1": errors_json(&errs[0]),
                "errors2": errors_json(&errs[1]),
            }));
        }
        let mut props = json!({});
        totals[0].write(&mut props, 1);
        totals[1].write(&mut props, 2);
        Ok::<_, Failure>((files, props))
    })
    .await
    .map_err(|e| Failure::internal(format!("evaluation task: {e}")))??;
    let bytes = serde_json::to_vec_pretty(&json!({ "files": files }))
        .map_err(|e| Failure::internal(format!("results: {e}")))?;
    let file = DetailsFile {
        id: Uuid::new_v4(),
        size: bytes.len() as u64,
    };
    state
        .store()
        .blobs
        .put(&asset_file_key(resource, id, file.id), bytes.into())
        .await
        .map_err(storage)?;
    Ok(Some((file, props)))
}

/// Records the outcome: `Succeeded` with the counts and the result file, or `Failed`.
async fn finish(
    state: &AppState,
    resource: ResourceId,
    id: Uuid,
    mut doc: EvaluationDoc,
    outcome: Result<Option<(DetailsFile, Value)>, Failure>,
) -> Result<(), StoreError> {
    let store = state.store();
    let Some(asset) = store
        .meta
        .get_asset(resource, AssetKind::Evaluation, id)
        .await?
    else {
        remove_blobs(store, resource, id).await;
        return Ok(());
    };
    let update = match outcome {
        Ok(None) => return Ok(()),
        Ok(Some((file, props))) => {
            if let Ok(current) = evaluation_doc(&asset) {
                doc.custom_properties = current.custom_properties;
            }
            doc.details = Some(file);
            AssetUpdate {
                status: Some(AssetStatus::Succeeded),
                properties: Some(props),
                doc: serde_json::to_value(&doc).ok(),
                ..AssetUpdate::default()
            }
        }
        Err(f) => {
            if f.code == "InternalError" {
                tracing::error!(evaluation = %id, reason = %f.message, "evaluation failed");
            }
            let message = if f.code == "InternalError" {
                "the evaluation failed because of an internal error".to_owned()
            } else {
                f.message
            };
            let mut properties = asset.properties.clone();
            properties["error"] = json!({ "code": f.code, "message": message });
            AssetUpdate {
                status: Some(AssetStatus::Failed),
                properties: Some(properties),
                ..AssetUpdate::default()
            }
        }
    };
    match store
        .meta
        .update_asset(resource, AssetKind::Evaluation, id, update)
        .await
    {
        Err(StoreError::NotFound { .. }) => {
            remove_blobs(store, resource, id).await;
            Ok(())
        }
        other => other.map(drop),
    }
}
