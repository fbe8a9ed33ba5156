//! Endpoint logs: Azure's audio and transcription logging, the "log data" asset of Microsoft's
//! backup guide. Endpoints_ListLogs / _GetLog / _DeleteLog / _DeleteLogs and their base-model
//! twins (`/endpoints/base/{locale}/files/logs…`).
//!
//! Logging is opt-in. An endpoint created or patched with `loggingEnabled` (or Azure's
//! `contentLoggingEnabled`) logs every `?cid=` recognition; otherwise a request logs only when it
//! asks with `storeAudio=true` (Azure's per-request switch), and a request without `cid` logs
//! under its locale's base model. The endpoint setting wins over the request's, as in Azure.
//!
//! One logged recognition is two blobs: the audio exactly as received (`.wav`) and a
//! transcription document (`.v2.json`, see [`transcription_doc`]). An endpoint's logs live under
//! its own blob prefix (`assets/<resource>/<endpoint>/logs/`), so deleting, backing up or copying
//! the endpoint takes them along; base-model logs live under
//! `assets/<resource>/base-logs/<locale>/`.
//!
//! Ids and names follow Azure: the file named `163715__<guid>.wav` has the id
//! `2023-03-13_163715__<guid>_wav`. A blob key is only ever built from a parsed [`LogId`], never
//! from a raw path segment. Logs older than `custom_speech.log_retention_days` (30, as in Azure)
//! are deleted by [`sweep`], which the server runs every hour ([`spawn_retention`]).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tandem_core::ResourceId;
use tandem_store::{asset_blob_prefix, resource_blob_prefix, BlobMeta, Store, StoreError};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};
use uuid::Uuid;

use super::create::DATASET_LOCALES;
use super::endpoints::Endpoints;
use super::{azure_time, crud, page_json, Cx, Paging};
use crate::{ApiError, AppState, V3Error};

type V3Result<T = Response> = Result<T, V3Error>;

/// The version of the transcription document this build writes.
pub(crate) const TRANSCRIPTION_DOC_FORMAT: u32 = 1;

/// How often [`spawn_retention`] sweeps.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The two files of a logged recognition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogKind {
    /// The request's audio, byte for byte.
    Audio,
    /// What was recognized ([`transcription_doc`]).
    Transcription,
}

impl LogKind {
    const ALL: [LogKind; 2] = [LogKind::Audio, LogKind::Transcription];

    /// The end of the file name, after the dot.
    fn extension(self) -> &'static str {
        match self {
            LogKind::Audio => "wav",
            LogKind::Transcription => "v2.json",
        }
    }

    /// The end of the log id, after the last `_`.
    fn id_suffix(self) -> &'static str {
        match self {
            LogKind::Audio => "wav",
            LogKind::Transcription => "v2_json",
        }
    }

    /// Azure's `kind` of the file.
    fn azure(self) -> &'static str {
        match self {
            LogKind::Audio => "Audio",
            LogKind::Transcription => "Transcription",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            LogKind::Audio => "audio/wav",
            LogKind::Transcription => "application/json",
        }
    }
}

/// One log file: when it was written (whole seconds, UTC), the recognition it belongs to, and
/// which of its two files it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogId {
    pub at: PrimitiveDateTime,
    pub set: Uuid,
    pub kind: LogKind,
}

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");
const CLOCK: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[hour][minute][second]");

impl LogId {
    fn new(at: OffsetDateTime, set: Uuid, kind: LogKind) -> LogId {
        let at = at.to_offset(time::UtcOffset::UTC);
        let at = PrimitiveDateTime::new(
            at.date(),
            at.time().replace_nanosecond(0).unwrap_or(Time::MIDNIGHT),
        );
        LogId { at, set, kind }
    }

    fn date(&self) -> String {
        self.at.date().format(DATE).unwrap_or_default()
    }

    fn clock(&self) -> String {
        self.at.time().format(CLOCK).unwrap_or_default()
    }

    /// `2023-03-13_163715__<guid>_wav`
    pub fn id(&self) -> String {
        format!(
            "{}_{}__{}_{}",
            self.date(),
            self.clock(),
            self.set,
            self.kind.id_suffix()
        )
    }

    /// Azure's `name`: `163715__<guid>.wav`
    pub fn name(&self) -> String {
        format!("{}__{}.{}", self.clock(), self.set, self.kind.extension())
    }

    /// The last segment of the blob key: `2023-03-13_163715__<guid>.wav`
    fn blob_name(&self) -> String {
        format!("{}_{}", self.date(), self.name())
    }

    /// Parses an id ([`LogId::id`]); `None` for anything else.
    pub fn parse(id: &str) -> Option<LogId> {
        LogKind::ALL.into_iter().find_map(|kind| {
            let stem = id.strip_suffix(kind.id_suffix())?.strip_suffix('_')?;
            Self::parse_stem(stem, kind)
        })
    }

    /// Parses a blob name ([`LogId::blob_name`]); `None` for anything else.
    fn parse_blob_name(name: &str) -> Option<LogId> {
        LogKind::ALL.into_iter().find_map(|kind| {
            let stem = name.strip_suffix(kind.extension())?.strip_suffix('.')?;
            Self::parse_stem(stem, kind)
        })
    }

    /// `<yyyy-mm-dd>_<hhmmss>__<guid>`
    fn parse_stem(stem: &str, kind: LogKind) -> Option<LogId> {
        let (when, set) = stem.split_once("__")?;
        let (date, clock) = when.split_once('_')?;
        if date.len() != 10 || clock.len() != 6 || set.len() != 36 {
            return None;
        }
        let date = Date::parse(date, DATE).ok()?;
        let clock = Time::parse(clock, CLOCK).ok()?;
        let set = Uuid::parse_str(set).ok()?;
        Some(LogId {
            at: PrimitiveDateTime::new(date, clock),
            set,
            kind,
        })
    }

    fn created(&self) -> OffsetDateTime {
        self.at.assume_utc()
    }
}

/// Whose logs: an endpoint's, or a locale's base model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Endpoint(Uuid),
    Base(&'static str),
}

impl Scope {
    /// The blob prefix of the scope's logs (with the trailing slash).
    fn prefix(self, resource: ResourceId) -> String {
        match self {
            Scope::Endpoint(id) => format!("{}logs/", asset_blob_prefix(resource, id)),
            Scope::Base(locale) => format!("{}base-logs/{locale}/", resource_blob_prefix(resource)),
        }
    }

    fn key(self, resource: ResourceId, id: &LogId) -> String {
        format!("{}{}", self.prefix(resource), id.blob_name())
    }

    /// The list's URL under the caller's API version.
    fn url(self, cx: &Cx) -> String {
        match self {
            Scope::Endpoint(id) => cx.url(&format!("/endpoints/{id}/files/logs")),
            Scope::Base(locale) => cx.url(&format!("/endpoints/base/{locale}/files/logs")),
        }
    }
}

/// The base-model log scope of `locale` (matched case-insensitively), if Tandem recognizes it.
pub(crate) fn base_scope(locale: &str) -> Option<Scope> {
    DATASET_LOCALES
        .iter()
        .find(|l| l.eq_ignore_ascii_case(locale.trim()))
        .map(|l| Scope::Base(l))
}

/// What a transcription log holds: the request (mode, locale, endpoint, audio file and its
/// length) and the response exactly as the caller received it.
pub(crate) fn transcription_doc(
    set: Uuid,
    at: OffsetDateTime,
    scope: Scope,
    mode: &str,
    locale: &str,
    audio_secs: f64,
    response: &Value,
) -> Value {
    let audio = LogId::new(at, set, LogKind::Audio);
    json!({
        "format": TRANSCRIPTION_DOC_FORMAT,
        "id": set,
        "createdDateTime": azure_time(at),
        "endpoint": match scope { Scope::Endpoint(id) => json!(id), Scope::Base(_) => Value::Null },
        "locale": locale,
        "mode": mode,
        "audio": { "name": audio.name(), "durationSeconds": audio_secs },
        "recognition": response,
    })
}

/// Stores one logged recognition: the audio, then its transcription document. Returns the id
/// of the audio file.
pub(crate) async fn record(
    store: &Store,
    resource: ResourceId,
    scope: Scope,
    set: Uuid,
    at: OffsetDateTime,
    audio: Bytes,
    transcription: &Value,
) -> Result<LogId, StoreError> {
    let audio_id = LogId::new(at, set, LogKind::Audio);
    let text_id = LogId::new(at, set, LogKind::Transcription);
    store
        .blobs
        .put(&scope.key(resource, &audio_id), audio)
        .await?;
    let text = serde_json::to_vec_pretty(transcription).unwrap_or_default();
    store
        .blobs
        .put(&scope.key(resource, &text_id), Bytes::from(text))
        .await?;
    Ok(audio_id)
}

/// The logs of `scope`, oldest first, with their sizes.
async fn listed(
    store: &Store,
    resource: ResourceId,
    scope: Scope,
) -> Result<Vec<(LogId, u64)>, ApiError> {
    let prefix = scope.prefix(resource);
    Ok(store
        .blobs
        .list_meta(&prefix)
        .await?
        .into_iter()
        .filter_map(|BlobMeta { key, size }| {
            let name = key.strip_prefix(&prefix)?;
            Some((LogId::parse_blob_name(name)?, size))
        })
        .collect())
}

/// Azure's `File` entity of a log.
fn file_json(cx: &Cx, scope: Scope, id: &LogId, size: u64) -> Value {
    let url = format!("{}/{}", scope.url(cx), id.id());
    json!({
        "self": url,
        "name": id.name(),
        "kind": id.kind.azure(),
        "properties": { "size": size },
        "createdDateTime": azure_time(id.created()),
        "links": { "contentUrl": format!("{url}/content") },
    })
}

fn no_log(id: &str) -> V3Error {
    V3Error(ApiError::NotFound(format!("log {id} not found")))
}

/// The endpoint scope of the caller's endpoint `id`, or 404.
async fn endpoint_scope(state: &AppState, cx: &Cx, id: &str) -> V3Result<Scope> {
    let (asset, _) = crud::load::<Endpoints>(state, cx, id).await?;
    Ok(Scope::Endpoint(asset.id))
}

fn locale_scope(locale: &str) -> V3Result<Scope> {
    base_scope(locale).ok_or_else(|| {
        V3Error(ApiError::NotFound(format!(
            "no base model serves locale {locale:?} here: use one of {}",
            DATASET_LOCALES.join(", ")
        )))
    })
}

async fn list_scope(
    state: &AppState,
    cx: &Cx,
    scope: Scope,
    query: Option<&str>,
) -> V3Result<Json<Value>> {
    let paging = Paging::parse(query)?;
    let all = listed(state.store(), cx.resource(), scope).await?;
    let total = all.len() as u64;
    let values: Vec<Value> = all
        .iter()
        .skip(usize::try_from(paging.skip).unwrap_or(usize::MAX))
        .take(paging.top as usize)
        .map(|(id, size)| file_json(cx, scope, id, *size))
        .collect();
    Ok(Json(page_json(values, total, paging, &scope.url(cx))))
}

async fn find(state: &AppState, cx: &Cx, scope: Scope, log: &str) -> V3Result<(LogId, u64)> {
    let id = LogId::parse(log).ok_or_else(|| no_log(log))?;
    listed(state.store(), cx.resource(), scope)
        .await?
        .into_iter()
        .find(|(l, _)| *l == id)
        .ok_or_else(|| no_log(log))
}

async fn get_scope(state: &AppState, cx: &Cx, scope: Scope, log: &str) -> V3Result<Json<Value>> {
    let (id, size) = find(state, cx, scope, log).await?;
    Ok(Json(file_json(cx, scope, &id, size)))
}

async fn content_scope(state: &AppState, cx: &Cx, scope: Scope, log: &str) -> V3Result {
    let id = LogId::parse(log).ok_or_else(|| no_log(log))?;
    let bytes = state
        .store()
        .blobs
        .get(&scope.key(cx.resource(), &id))
        .await?
        .ok_or_else(|| no_log(log))?;
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(id.kind.content_type()),
        )],
        bytes,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", id.name())) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// 204 whether or not the log existed (Azure's delete is idempotent); a malformed id is 404.
async fn delete_one_scope(
    state: &AppState,
    cx: &Cx,
    scope: Scope,
    log: &str,
) -> V3Result<StatusCode> {
    let id = LogId::parse(log).ok_or_else(|| no_log(log))?;
    state
        .store()
        .blobs
        .delete(&scope.key(cx.resource(), &id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The `endDate` of Endpoints_DeleteLogs (`yyyy-mm-dd`): logs of that day and before go.
fn end_date(query: Option<&str>) -> V3Result<Option<Date>> {
    let Some(v) = query
        .unwrap_or("")
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find_map(|(k, v)| (k == "endDate").then_some(v))
    else {
        return Ok(None);
    };
    Date::parse(v, DATE).map(Some).map_err(|_| {
        V3Error(ApiError::bad_request(
            "InvalidParameterValue",
            format!("endDate must be a day as yyyy-mm-dd (UTC), not {v:?}"),
        ))
    })
}

async fn delete_all_scope(
    state: &AppState,
    cx: &Cx,
    scope: Scope,
    query: Option<&str>,
) -> V3Result<StatusCode> {
    let until = end_date(query)?;
    let store = state.store();
    for (id, _) in listed(store, cx.resource(), scope).await? {
        if until.is_none_or(|day| id.at.date() <= day) {
            store.blobs.delete(&scope.key(cx.resource(), &id)).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /endpoints/{id}/files/logs`
pub(crate) async fn list(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> V3Result<Json<Value>> {
    let scope = endpoint_scope(&state, &cx, &id).await?;
    list_scope(&state, &cx, scope, query.as_deref()).await
}

/// `GET /endpoints/{id}/files/logs/{logId}`
pub(crate) async fn get(
    State(state): State<AppState>,
    cx: Cx,
    Path((id, log)): Path<(String, String)>,
) -> V3Result<Json<Value>> {
    let scope = endpoint_scope(&state, &cx, &id).await?;
    get_scope(&state, &cx, scope, &log).await
}

/// `GET /endpoints/{id}/files/logs/{logId}/content`
pub(crate) async fn content(
    State(state): State<AppState>,
    cx: Cx,
    Path((id, log)): Path<(String, String)>,
) -> V3Result {
    let scope = endpoint_scope(&state, &cx, &id).await?;
    content_scope(&state, &cx, scope, &log).await
}

/// `DELETE /endpoints/{id}/files/logs/{logId}`
pub(crate) async fn delete_one(
    State(state): State<AppState>,
    cx: Cx,
    Path((id, log)): Path<(String, String)>,
) -> V3Result<StatusCode> {
    let scope = endpoint_scope(&state, &cx, &id).await?;
    delete_one_scope(&state, &cx, scope, &log).await
}

/// `DELETE /endpoints/{id}/files/logs[?endDate=yyyy-mm-dd]`
pub(crate) async fn delete_all(
    State(state): State<AppState>,
    cx: Cx,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> V3Result<StatusCode> {
    let scope = endpoint_scope(&state, &cx, &id).await?;
    delete_all_scope(&state, &cx, scope, query.as_deref()).await
}

/// `GET /endpoints/base/{locale}/files/logs`
pub(crate) async fn base_list(
    State(state): State<AppState>,
    cx: Cx,
    Path(locale): Path<String>,
    RawQuery(query): RawQuery,
) -> V3Result<Json<Value>> {
    list_scope(&state, &cx, locale_scope(&locale)?, query.as_deref()).await
}

/// `GET /endpoints/base/{locale}/files/logs/{logId}`
pub(crate) async fn base_get(
    State(state): State<AppState>,
    cx: Cx,
    Path((locale, log)): Path<(String, String)>,
) -> V3Result<Json<Value>> {
    get_scope(&state, &cx, locale_scope(&locale)?, &log).await
}

/// `GET /endpoints/base/{locale}/files/logs/{logId}/content`
pub(crate) async fn base_content(
    State(state): State<AppState>,
    cx: Cx,
    Path((locale, log)): Path<(String, String)>,
) -> V3Result {
    content_scope(&state, &cx, locale_scope(&locale)?, &log).await
}

/// `DELETE /endpoints/base/{locale}/files/logs/{logId}`
pub(crate) async fn base_delete_one(
    State(state): State<AppState>,
    cx: Cx,
    Path((locale, log)): Path<(String, String)>,
) -> V3Result<StatusCode> {
    delete_one_scope(&state, &cx, locale_scope(&locale)?, &log).await
}

/// `DELETE /endpoints/base/{locale}/files/logs[?endDate=yyyy-mm-dd]`
pub(crate) async fn base_delete_all(
    State(state): State<AppState>,
    cx: Cx,
    Path(locale): Path<String>,
    RawQuery(query): RawQuery,
) -> V3Result<StatusCode> {
    delete_all_scope(&state, &cx, locale_scope(&locale)?, query.as_deref()).await
}

/// Deletes every log of every resource written before `now - retention`; returns how many
/// files went. Only keys whose last two segments are a log directory and a well-formed log name
/// are considered, so no other blob can be taken for a log.
pub(crate) async fn sweep(
    store: &Store,
    retention: Duration,
    now: OffsetDateTime,
) -> Result<usize, StoreError> {
    let cutoff = now - retention;
    let mut deleted = 0;
    for key in store.blobs.list("assets/").await? {
        let mut segments = key.rsplit('/');
        let (Some(name), Some(dir), Some(parent)) =
            (segments.next(), segments.next(), segments.next())
        else {
            continue;
        };
        if dir != "logs" && parent != "base-logs" {
            continue;
        }
        let Some(id) = LogId::parse_blob_name(name) else {
            continue;
        };
        if id.created() < cutoff {
            store.blobs.delete(&key).await?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Runs [`sweep`] now and then every [`SWEEP_EVERY`], for as long as the runtime lives.
pub(crate) fn spawn_retention(state: AppState) {
    let days = state.config().custom_speech.log_retention_days;
    let retention = Duration::from_secs(u64::from(days) * 86_400);
    const NAME: &str = "log-retention";
    state.workers().register(
        NAME,
        "scan",
        crate::workers::WorkerState::Idle,
        &format!("deletes endpoint logs older than {days} days, hourly"),
    );
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        loop {
            tick.tick().await;
            state.workers().started(NAME);
            let outcome = sweep(state.store(), retention, OffsetDateTime::now_utc()).await;
            match &outcome {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, days, "endpoint logs past retention deleted"),
                Err(e) => tracing::warn!(error = %e, "endpoint log retention sweep failed"),
            }
            let outcome = outcome
                .map(|n| format!("last sweep deleted {n} logs"))
                .map_err(|e| e.to_string());
            state.workers().finished(NAME, outcome);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    #[test]
    fn ids_names_and_keys_follow_azure_and_round_trip() {
        let set = Uuid::parse_str("0420c53d-e6ac-4857-bce0-f39c3f9f5ff9").unwrap();
        let when = at("2023-03-13T16:37:15.734Z");
        let audio = LogId::new(when, set, LogKind::Audio);
        let text = LogId::new(when, set, LogKind::Transcription);
        assert_eq!(
            audio.id(),
            "2023-03-13_163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_wav"
        );
        assert_eq!(
            text.id(),
            "2023-03-13_163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_v2_json"
        );
        assert_eq!(
            audio.name(),
            "163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9.wav"
        );
        assert_eq!(
            text.name(),
            "163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9.v2.json"
        );
        for id in [audio, text] {
            assert_eq!(LogId::parse(&id.id()), Some(id));
            assert_eq!(LogId::parse_blob_name(&id.blob_name()), Some(id));
            assert_eq!(id.created(), at("2023-03-13T16:37:15Z"));
        }
    }

    #[test]
    fn anything_but_a_well_formed_id_is_refused() {
        let good = "2023-03-13_163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_wav";
        assert!(LogId::parse(good).is_some());
        for bad in [
            "",
            "_wav",
            "2023-03-13_163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9",
            "2023-03-13_163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_mp3",
            "2023-13-13_163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_wav",
            "2023-03-13_256715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_wav",
            "2023-03-13_163715__../../../../etc/passwd-aaaaaaaaaaaa_wav",
            "2023-03-13_163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_wav_wav",
            "x2023-03-13_163715__0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_wav",
            "2023-03-13_163715_0420c53d-e6ac-4857-bce0-f39c3f9f5ff9_wav",
        ] {
            assert_eq!(LogId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn end_date_is_a_day_or_absent() {
        assert_eq!(end_date(None).unwrap(), None);
        assert_eq!(end_date(Some("top=5")).unwrap(), None);
        assert_eq!(
            end_date(Some("endDate=2023-03-15")).unwrap(),
            Some(time::macros::date!(2023 - 03 - 15))
        );
        assert!(end_date(Some("endDate=15/03/2023")).is_err());
        assert!(end_date(Some("endDate=")).is_err());
    }

    #[test]
    fn base_scopes_are_the_supported_locales() {
        assert_eq!(base_scope("en-us"), Some(Scope::Base("en-US")));
        assert_eq!(base_scope(" EN-GB "), Some(Scope::Base("en-GB")));
        assert_eq!(base_scope("xx-YY"), None);
        assert_eq!(base_scope("../en-US"), None);
    }

    /// Retention on controlled time: a log is kept until exactly `retention` has passed, and
    /// nothing but log files is ever swept.
    #[tokio::test]
    async fn the_sweep_deletes_only_logs_past_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            &format!("sqlite://{}/t.db", dir.path().display()),
            &format!("file://{}/blobs", dir.path().display()),
        )
        .await
        .unwrap();
        let resource = ResourceId::random();
        let endpoint = Scope::Endpoint(Uuid::new_v4());
        let base = Scope::Base("en-US");
        let t0 = at("2026-01-01T12:00:00Z");
        let doc = json!({});
        let old = record(
            &store,
            resource,
            endpoint,
            Uuid::new_v4(),
            t0,
            Bytes::from_static(b"RIFF"),
            &doc,
        )
        .await
        .unwrap();
        record(
            &store,
            resource,
            base,
            Uuid::new_v4(),
            t0,
            Bytes::from_static(b"RIFF"),
            &doc,
        )
        .await
        .unwrap();
        let t1 = t0 + Duration::from_secs(86_400);
        let young = record(
            &store,
            resource,
            endpoint,
            Uuid::new_v4(),
            t1,
            Bytes::from_static(b"RIFF"),
            &doc,
        )
        .await
        .unwrap();
        // A dataset file whose name merely looks like a log is not a log.
        let decoy = format!(
            "{}files/{}",
            asset_blob_prefix(resource, Uuid::new_v4()),
            old.blob_name()
        );
        store
            .blobs
            .put(&decoy, Bytes::from_static(b"data"))
            .await
            .unwrap();
        let retention = Duration::from_secs(30 * 86_400);

        // One second before the oldest expires: nothing goes.
        let now = t0 + retention - Duration::from_secs(1);
        assert_eq!(sweep(&store, retention, now).await.unwrap(), 0);
        // Just past it: the two t0 recognitions (two files each) go, the t1 one stays.
        let now = t0 + retention + Duration::from_secs(1);
        assert_eq!(sweep(&store, retention, now).await.unwrap(), 4);
        let left: Vec<LogId> = listed(&store, resource, endpoint)
            .await
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(left.len(), 2);
        assert!(left.iter().all(|id| id.set == young.set));
        assert!(listed(&store, resource, base).await.unwrap().is_empty());
        assert!(store.blobs.get(&decoy).await.unwrap().is_some());
        // Running again changes nothing.
        assert_eq!(sweep(&store, retention, now).await.unwrap(), 0);
    }
}
