//! The gateway's aggregate `/status` and `/status.json`: every region as the gateway sees it
//! (health, the breaker of the region and of each of its nodes), the failovers, failbacks, trips
//! and node ejections it made recently, and each region's own `/status.json` when it answers.
//!
//! One JSON document (`kind: "gateway"`, `formatVersion` 1). `/status` is the same data as a
//! self-refreshing HTML page for browsers (`Accept: text/html`), the JSON otherwise (as before
//! the page existed); `?format=json|html` decides explicitly. No credentials needed, no secrets
//! shown: the regions' keys stay in the gateway.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use prometheus::IntGaugeVec;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tandem_client::{ClientEvent, TandemClient};
use tandem_core::EventLog;

use crate::Gateway;

/// Events kept for the page.
pub(crate) const RECENT_EVENTS: usize = 100;
/// How long a region's own `/status.json` may take before it counts as unreachable.
const REGION_TIMEOUT: Duration = Duration::from_secs(2);
/// The status JSON's format version.
pub const GATEWAY_STATUS_FORMAT_VERSION: u32 = 1;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Records `e` into `log` if it is a failover, failback, trip or node ejection/readmission.
pub(crate) fn record(log: &EventLog, e: &ClientEvent) {
    let (kind, region, message) = match e {
        ClientEvent::Failover { from, to } => (
            "failover",
            from.clone(),
            format!("{from} failed: calls moved on to {to}"),
        ),
        ClientEvent::Failback { to } => (
            "failback",
            to.clone(),
            format!("{to} recovered: traffic returns to it"),
        ),
        ClientEvent::Trip { region, open_for } => (
            "breaker-trip",
            region.clone(),
            format!("breaker opened for {} ms", open_for.as_millis()),
        ),
        ClientEvent::NodeEjected {
            region,
            node,
            open_for,
        } => (
            "node-ejected",
            region.clone(),
            format!(
                "node {node} out of rotation, probed in {} ms",
                open_for.as_millis()
            ),
        ),
        ClientEvent::NodeReadmitted { region, node } => (
            "node-readmitted",
            region.clone(),
            format!("node {node} passed its probe: back in rotation"),
        ),
        ClientEvent::Discovered { region, pair } => (
            "pair-discovered",
            region.clone(),
            match pair {
                Some(p) => format!("speaker traffic fails over to its pair {p}"),
                None => "it has no pair".to_owned(),
            },
        ),
        _ => return,
    };
    log.push(kind, region, message);
}

/// Records the client's events into `log` for as long as the client lives. Needs a tokio
/// runtime; without one (some unit tests) nothing is recorded.
pub(crate) fn spawn_recorder(client: &TandemClient, log: Arc<EventLog>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let mut rx = client.subscribe();
    rt.spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => record(&log, &e),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// `tandem_gateway_region_status_reachable{region}`: whether the region's `/status.json`
/// answered the last time the gateway asked (on `/status` and `/metrics`).
pub(crate) fn reachable_gauge() -> IntGaugeVec {
    IntGaugeVec::new(
        prometheus::Opts::new(
            "tandem_gateway_region_status_reachable",
            "1 if the region's /status.json answered the gateway's last read, 0 if not",
        ),
        &["region"],
    )
    .expect("metric")
}

/// What one region said about itself, or why it said nothing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct RegionView {
    reachable: bool,
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Asks one region's nodes, in order, for `/status.json`; the first answer wins.
async fn fetch(http: reqwest::Client, endpoints: Vec<String>) -> RegionView {
    let mut error = None;
    for e in &endpoints {
        let url = format!("{}/status.json", e.trim_end_matches('/'));
        let r = http.get(&url).timeout(REGION_TIMEOUT).send().await;
        let r = match r {
            Ok(r) if r.status().is_success() => r.json::<Value>().await.map_err(|e| e.to_string()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Err("timed out".to_owned()),
            Err(e) if e.is_connect() => Err("connection refused or unreachable".to_owned()),
            Err(e) => Err(e.to_string()),
        };
        match r {
            Ok(status) => {
                return RegionView {
                    reachable: true,
                    endpoint: Some(e.clone()),
                    status: Some(status),
                    error: None,
                }
            }
            Err(m) => error = Some(format!("{e}: {m}")),
        }
    }
    RegionView {
        reachable: false,
        endpoint: endpoints.first().cloned(),
        status: None,
        error,
    }
}

/// Every region's own status, fetched at once: the configured regions, then the discovered
/// pairs the speaker routes know.
async fn region_views(gw: &Gateway) -> BTreeMap<String, RegionView> {
    let mut targets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in gw
        .client
        .status()
        .into_iter()
        .chain(gw.client.speaker_status())
    {
        let name = r.name.trim_end_matches("/speaker").to_owned();
        targets.entry(name).or_insert_with(|| {
            if r.nodes.is_empty() {
                vec![r.endpoint.clone()]
            } else {
                r.nodes.iter().map(|n| n.endpoint.clone()).collect()
            }
        });
    }
    let mut set = tokio::task::JoinSet::new();
    for (name, endpoints) in targets {
        let http = gw.http.clone();
        set.spawn(async move { (name, fetch(http, endpoints).await) });
    }
    let mut out = BTreeMap::new();
    while let Some(r) = set.join_next().await {
        if let Ok((name, view)) = r {
            gw.region_reachable
                .with_label_values(&[&name])
                .set(i64::from(view.reachable));
            out.insert(name, view);
        }
    }
    out
}

/// Updates `tandem_gateway_region_status_reachable` (for `/metrics`).
pub(crate) async fn refresh_gauges(gw: &Gateway) {
    region_views(gw).await;
}

/// The client's view of a route set, each region with a `health` from its own status.
fn with_health(
    list: Vec<tandem_client::RegionStatus>,
    views: &BTreeMap<String, RegionView>,
) -> Value {
    let v: Vec<Value> = list
        .into_iter()
        .map(|r| {
            let name = r.name.trim_end_matches("/speaker").to_owned();
            let mut v = serde_json::to_value(&r).unwrap_or(Value::Null);
            let health = match views.get(&name) {
                Some(RegionView {
                    reachable: true,
                    status: Some(s),
                    ..
                }) => s["health"]["status"]
                    .as_str()
                    .unwrap_or("unknown")
                    .to_owned(),
                Some(_) => "unreachable".to_owned(),
                None => "unknown".to_owned(),
            };
            v["health"] = json!(health);
            v
        })
        .collect();
    Value::Array(v)
}

/// The gateway's status document.
pub(crate) async fn document(gw: &Gateway) -> Value {
    let views = region_views(gw).await;
    json!({
        "kind": "gateway",
        "formatVersion": GATEWAY_STATUS_FORMAT_VERSION,
        "now": unix_now(),
        "regions": with_health(gw.client.status(), &views),
        "speaker_regions": with_health(gw.client.speaker_status(), &views),
        "events": gw.events.list(),
        "regionStatus": views,
    })
}

#[derive(Deserialize)]
pub(crate) struct StatusQuery {
    format: Option<String>,
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /status`: the page for browsers, the JSON for everyone else.
pub(crate) async fn page(
    State(gw): State<Arc<Gateway>>,
    headers: HeaderMap,
    Query(q): Query<StatusQuery>,
) -> Response {
    let doc = document(&gw).await;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if !tandem_core::status_wants_html(accept, q.format.as_deref()) {
        return no_store(Json(doc).into_response());
    }
    let body = tandem_core::status_page_html("Tandem · gateway", &doc, "/status.json");
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

/// `GET /status.json`.
pub(crate) async fn json(State(gw): State<Arc<Gateway>>) -> Response {
    no_store(Json(document(&gw).await).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failovers_failbacks_and_ejections_are_kept_retries_are_not() {
        let log = EventLog::new(RECENT_EVENTS);
        record(
            &log,
            &ClientEvent::Retry {
                region: "westus".into(),
                node: "n".into(),
                attempt: 1,
                delay: Duration::from_millis(5),
            },
        );
        record(
            &log,
            &ClientEvent::Failover {
                from: "westus".into(),
                to: "eastus".into(),
            },
        );
        record(
            &log,
            &ClientEvent::Failback {
                to: "westus".into(),
            },
        );
        record(
            &log,
            &ClientEvent::NodeEjected {
                region: "westus".into(),
                node: "http://a".into(),
                open_for: Duration::from_secs(1),
            },
        );
        let kinds: Vec<_> = log.list().iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["failover", "failback", "node-ejected"]);
        for _ in 0..RECENT_EVENTS {
            record(&log, &ClientEvent::Failback { to: "x".into() });
        }
        assert_eq!(log.list().len(), RECENT_EVENTS);
        assert!(log.list().iter().all(|e| e.kind == "failback"));
    }
}
