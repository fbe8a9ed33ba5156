//! `GET /status` and `GET /status.json`: the region at a glance, for operators.
//!
//! One JSON document (`kind: "region"`, `formatVersion` 1): health (the `/readyz` checks and the
//! speaker service's state), replication to the pair (link, changes behind, last pull, mean
//! apply lag), the last backup and its age, asset counts per kind, recent failover-related
//! events (speaker catch-up and failback, the pair's link going down and coming back), and the
//! background workers. `/status` is the same data as a self-refreshing HTML page (no external
//! assets) when the caller accepts `text/html` (a browser), the JSON otherwise; `?format=json`
//! or `?format=html` decides explicitly.
//!
//! Like `/healthz`, `/readyz` and `/metrics` it needs no credentials, so it shows no secrets:
//! no keys, tokens, peer secret, backup target or resource names, only counts, states, times
//! and error messages of the region's own workers.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tandem_store::AssetKind;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::replication::SpeakerState;
use crate::workers::{WorkerInfo, WorkerState};
use crate::AppState;

/// Events kept for the status page.
pub(crate) const RECENT_EVENTS: usize = 50;
/// The status JSON's format version.
pub const STATUS_FORMAT_VERSION: u32 = 1;

/// The follower's view, read from [`crate::Replication::status_json`].
struct Link {
    reachable: Option<bool>,
    last_pull: Option<i64>,
}

fn unix(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok())
        .map(|t| t.unix_timestamp())
}

fn link(state: &AppState) -> (Value, Link) {
    let s = state.replication().status_json();
    let last_pull = unix(&s["lastPull"]);
    let reachable = match (s["lastError"].is_null(), last_pull) {
        (false, _) => Some(false),
        (true, Some(_)) => Some(true),
        (true, None) => None,
    };
    (
        s,
        Link {
            reachable,
            last_pull,
        },
    )
}

/// Records the speaker service's state changes and the pair's link going down and back up, for
/// as long as the region runs (paired regions only). The link is sampled every second.
pub(crate) fn spawn_watch(state: AppState) {
    let Some(pair) = state.replication().pair().map(|p| p.name.to_string()) else {
        return;
    };
    tokio::spawn(async move {
        let region = state.region().to_string();
        let repl = state.replication().clone();
        let mut speaker = repl.watch_state();
        let mut shutdown = repl.watch_shutdown();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = *speaker.borrow_and_update();
        record_state(&state, &region, &pair, seen);
        let mut reachable: Option<bool> = None;
        loop {
            tokio::select! {
                r = speaker.changed() => {
                    if r.is_err() { return }
                    let now = *speaker.borrow_and_update();
                    if now != seen {
                        seen = now;
                        record_state(&state, &region, &pair, now);
                    }
                }
                _ = tick.tick() => {
                    let (_, l) = link(&state);
                    if let Some(r) = l.reachable {
                        if reachable != Some(r) {
                            let (kind, msg) = if r {
                                ("pair-reachable-again", format!("replication from {pair} works again"))
                            } else {
                                ("pair-unreachable", format!("{pair} does not answer replication pulls: its speaker clients fail over here"))
                            };
                            // The first sample only sets the baseline when the link is up.
                            if reachable.is_some() || !r {
                                state.events().push(kind, pair.clone(), msg);
                                let to = if r { "reachable" } else { "unreachable" };
                                state.metrics().replication_link_changes.with_label_values(&[to]).inc();
                            }
                            reachable = Some(r);
                        }
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    });
}

fn record_state(state: &AppState, region: &str, pair: &str, s: SpeakerState) {
    let (kind, label, msg) = match s {
        SpeakerState::CatchingUp => (
            "speaker-catching-up",
            "catching-up",
            format!("catching up with {pair}: speaker traffic goes to {pair} meanwhile"),
        ),
        SpeakerState::Serving => (
            "speaker-serving",
            "serving",
            format!("caught up with {pair}: speaker traffic fails back here"),
        ),
        SpeakerState::Standalone => return,
    };
    state
        .metrics()
        .speaker_state_changes
        .with_label_values(&[label])
        .inc();
    state.events().push(kind, region.to_owned(), msg);
}

/// Asset counts of the region.
#[derive(Debug, Default)]
struct Counts {
    resources: u64,
    kinds: BTreeMap<&'static str, u64>,
    profiles: u64,
    enrollments: u64,
}

async fn counts(state: &AppState) -> Result<Counts, tandem_store::StoreError> {
    let meta = &state.store().meta;
    let resources = meta.list_resources(state.region()).await?;
    let mut kinds: BTreeMap<&'static str, u64> =
        AssetKind::ALL.iter().map(|k| (k.as_str(), 0)).collect();
    for r in &resources {
        for kind in AssetKind::ALL {
            let page = meta.list_assets(r.id, kind, 0, 0).await?;
            *kinds.entry(kind.as_str()).or_default() += page.total;
        }
    }
    let digest = meta.speaker_digest().await?;
    Ok(Counts {
        resources: resources.len() as u64,
        kinds,
        profiles: digest.live_profiles,
        enrollments: digest.live_enrollments,
    })
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Brings the gauges read from the store and the follower up to date (called by `/metrics`
/// and by the status routes). A store error leaves the asset gauges as they were.
pub(crate) async fn refresh_gauges(state: &AppState) {
    let _ = refresh(state).await;
}

async fn refresh(state: &AppState) -> Result<Counts, String> {
    let m = state.metrics();
    if state.replication().pair().is_some() {
        let (_, l) = link(state);
        m.replication_pair_reachable
            .set(i64::from(l.reachable.unwrap_or(false)));
        m.replication_last_pull
            .set(l.last_pull.map_or(0.0, |t| t as f64));
    }
    let c = counts(state).await.map_err(|e| e.to_string())?;
    for (kind, n) in &c.kinds {
        m.assets.with_label_values(&[kind]).set(gauge(*n));
    }
    m.resources.set(gauge(c.resources));
    m.speaker_profiles.set(gauge(c.profiles));
    m.speaker_enrollments.set(gauge(c.enrollments));
    Ok(c)
}

fn rfc(t: i64) -> Option<String> {
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
}

/// Workers the registry does not hold because their state lives elsewhere: the engines and the
/// replication follower.
fn derived_workers(state: &AppState, repl: &Value, l: &Link) -> Vec<WorkerInfo> {
    let engines = match state.engines() {
        Some(_) => WorkerInfo::new("engines", "engines", WorkerState::Idle, "loaded"),
        None => WorkerInfo::new("engines", "engines", WorkerState::Busy, "loading"),
    };
    let follower = match state.replication().pair() {
        None => WorkerInfo::new(
            "replication",
            "replication",
            WorkerState::Off,
            "no pair configured",
        ),
        Some(p) => {
            let st = match l.reachable {
                Some(false) => WorkerState::Error,
                _ => WorkerState::Idle,
            };
            let mut w = WorkerInfo::new(
                "replication",
                "replication",
                st,
                format!(
                    "following {}: speaker {}, {} changes behind",
                    p.name,
                    repl["state"].as_str().unwrap_or("?"),
                    repl["behind"].as_u64().unwrap_or(0)
                ),
            );
            if repl["leader"] == false && l.last_pull.is_none() {
                w.detail = format!(
                    "standby: another node of the region follows {} (speaker {})",
                    p.name,
                    repl["state"].as_str().unwrap_or("?")
                );
            }
            w.last_run = l.last_pull;
            w.last_ok = l.last_pull;
            w.last_error = repl["lastError"].as_str().map(str::to_owned);
            w.runs = repl["appliedTotal"].as_u64().unwrap_or(0);
            w
        }
    };
    vec![engines, follower]
}

/// The status document.
pub(crate) async fn document(state: &AppState) -> Value {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let m = state.metrics();
    let meta_ok = state.store().meta.ping().await;
    let blobs_ok = state.store().blobs.ping().await;
    let engines = state.engines().is_some();
    let ready = meta_ok.is_ok() && blobs_ok.is_ok() && engines;
    let show = |r: &Result<(), tandem_store::StoreError>| match r {
        Ok(()) => "ok".to_owned(),
        Err(_) => "unavailable".to_owned(),
    };
    let (repl, l) = link(state);
    let counts = refresh(state).await;
    let lag_n = m.replication_lag.get_sample_count();
    let mean_lag = (lag_n > 0).then(|| m.replication_lag.get_sample_sum() / lag_n as f64);
    let mut workers = derived_workers(state, &repl, &l);
    workers.extend(state.workers().list());
    let backup_worker = workers.iter().find(|w| w.name == "backup").cloned();
    let last_success = m.backup_last_success.get();
    let last_success = (last_success > 0.0).then_some(last_success as i64);
    let cfg = state.config();
    let assets = match &counts {
        Ok(c) => json!({
            "resources": c.resources,
            "speakerProfiles": c.profiles,
            "speakerEnrollments": c.enrollments,
            "kinds": c.kinds,
        }),
        Err(e) => json!({"error": e}),
    };
    json!({
        "kind": "region",
        "formatVersion": STATUS_FORMAT_VERSION,
        "region": state.region().to_string(),
        "node": cfg.node_name(),
        "now": now,
        "generatedAt": rfc(now),
        "health": {
            "status": if ready { "ready" } else { "not ready" },
            "speaker": state.replication().state(),
            "checks": {
                "metadata": show(&meta_ok),
                "blobs": show(&blobs_ok),
                "engines": if engines { "ok" } else { "loading" },
            },
            "queues": {"stt": state.stt_pool().queue_depth(), "tts": state.tts_pool().queue_depth()},
        },
        "replication": {
            "pair": repl["pair"]["region"],
            "state": repl["state"],
            "reachable": l.reachable,
            "lastPull": l.last_pull,
            "lastPullAgeSecs": l.last_pull.map(|t| now - t),
            "behindChanges": repl["behind"],
            "pairHead": repl["pairHead"],
            "cursor": repl["cursor"],
            "appliedTotal": repl["appliedTotal"],
            "meanApplyLagSecs": mean_lag,
            "caughtUpAt": unix(&repl["caughtUpAt"]),
            "lastError": repl["lastError"],
        },
        "backup": {
            "enabled": cfg.backup.interval_secs > 0,
            "intervalSecs": cfg.backup.interval_secs,
            "lastSuccess": last_success,
            "lastSuccessAgeSecs": last_success.map(|t| now - t),
            "lastSnapshot": backup_worker.as_ref().and_then(|w| w.last_ok.map(|_| w.detail.clone())),
            "lastError": backup_worker.as_ref().and_then(|w| w.last_error.clone()),
            "runsOk": m.backup_runs.with_label_values(&["ok"]).get(),
            "runsFailed": m.backup_runs.with_label_values(&["error"]).get(),
        },
        "assets": assets,
        "events": state.events().list(),
        "workers": workers,
    })
}

#[derive(Deserialize)]
pub(crate) struct StatusQuery {
    format: Option<String>,
}

/// `GET /status`: the page for browsers, the JSON for everyone else.
pub(crate) async fn page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<StatusQuery>,
) -> Response {
    let doc = document(&state).await;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if !tandem_core::status_wants_html(accept, q.format.as_deref()) {
        return no_store(Json(doc).into_response());
    }
    let title = format!("Tandem · region {}", state.region());
    html(tandem_core::status_page_html(&title, &doc, "/status.json"))
}

/// `GET /status.json`.
pub(crate) async fn json(State(state): State<AppState>) -> Response {
    no_store(Json(document(&state).await).into_response())
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// An HTML status page, with a policy that allows nothing from outside.
pub(crate) fn html(body: String) -> Response {
    no_store(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
                ),
            ],
            body,
        )
            .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    /// A region state on a fresh store, without engines.
    async fn state() -> (tempfile::TempDir, AppState) {
        let dir = tempfile::tempdir().unwrap();
        let meta = format!("sqlite://{}", dir.path().join("t.db").display());
        let blobs = format!("file://{}", dir.path().join("blobs").display());
        let store = tandem_store::Store::open(&meta, &blobs).await.unwrap();
        let region = tandem_core::RegionName::new("westus").unwrap();
        let config = tandem_core::RegionConfig::new(region.clone(), dir.path().into());
        let pool = || {
            crate::EnginePool::new(
                "test",
                1,
                1,
                prometheus::IntGauge::new("q", "q").unwrap(),
                prometheus::IntGauge::new("b", "b").unwrap(),
            )
        };
        let state = AppState::new(crate::StateParts {
            replication: std::sync::Arc::new(crate::Replication::new(&config, None)),
            config,
            store,
            signer: tandem_core::TokenSigner::new(region, vec![7; 32], 600),
            admin_token: Some("admin-secret-token".into()),
            stt_pool: pool(),
            tts_pool: pool(),
            metrics: crate::Metrics::new("westus"),
        });
        (dir, state)
    }

    async fn get(state: &AppState, uri: &str, accept: Option<&str>) -> (String, String) {
        let mut req = Request::get(uri);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        let resp = crate::router(state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{uri}");
        let ct = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .unwrap();
        (ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn status_json_counts_assets_lists_workers_and_shows_no_secrets() {
        let (_dir, state) = state().await;
        crate::create_resource(state.store().meta.as_ref(), state.region(), "demo", 5)
            .await
            .unwrap();
        state
            .workers()
            .register("backup", "backup", WorkerState::Idle, "every 60 s");
        state.workers().job_started("train/r/m");
        let (ct, body) = get(&state, "/status.json", None).await;
        assert!(ct.starts_with("application/json"), "{ct}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (v["kind"].as_str(), v["region"].as_str()),
            (Some("region"), Some("westus"))
        );
        assert_eq!(v["health"]["status"], "not ready", "no engines: {v:#}");
        assert_eq!(v["health"]["checks"]["engines"], "loading");
        assert_eq!(v["assets"]["resources"], 1);
        assert_eq!(v["assets"]["kinds"]["dataset"], 0);
        assert_eq!(v["replication"]["pair"], Value::Null);
        assert_eq!(v["backup"]["lastSuccess"], Value::Null);
        let names: Vec<&str> = v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["engines", "replication", "backup", "job/train/r/m"]);
        assert_eq!(v["workers"][1]["state"], "off");
        assert!(!body.contains("admin-secret-token"));

        // `/status`: JSON for scripts, the page for browsers; the gauges follow.
        let (ct, _) = get(&state, "/status", Some("*/*")).await;
        assert!(ct.starts_with("application/json"));
        let (ct, page) = get(&state, "/status", Some("text/html,*/*;q=0.8")).await;
        assert!(ct.starts_with("text/html"));
        assert!(page.contains("<title>Tandem · region westus</title>"));
        assert!(page.contains(r#""kind":"region""#), "the JSON is embedded");
        let (_, metrics) = get(&state, "/metrics", None).await;
        assert!(
            metrics.contains(r#"tandem_resources{region="westus"} 1"#),
            "{metrics}"
        );
    }

    #[test]
    fn the_event_log_keeps_the_most_recent() {
        let log = tandem_core::EventLog::new(RECENT_EVENTS);
        for i in 0..(RECENT_EVENTS + 5) {
            log.push("pair-unreachable", "eastus".into(), format!("{i}"));
        }
        let l = log.list();
        assert_eq!(l.len(), RECENT_EVENTS);
        assert_eq!(l[0].message, "5");
        assert_eq!(l.last().unwrap().message, format!("{}", RECENT_EVENTS + 4));
    }
}
