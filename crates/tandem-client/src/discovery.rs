//! Discovery: each configured region's `GET /.well-known/tandem` names its pair, which the
//! speaker route set then includes.
//!
//! The first round asks every configured region at once; regions that gave no answer are asked
//! again every `probe_interval` until each has answered once, then all of them every
//! `discovery_refresh`. A region that gives no answer keeps the pair it last named (an outage
//! of the primary is exactly when its pair is needed); one that answers with `pair: null`
//! loses it. A malformed document, or none (404 from an older server), is logged and ignored.

use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use crate::config::CallKind;
use crate::engine::Engine;
use crate::observe::ClientEvent;
use crate::speaker::{Pair, SpeakerRoutes};
use crate::wire::request;

/// The discovery path, served without authentication.
pub(crate) const WELL_KNOWN: &str = "/.well-known/tandem";

/// The part of the discovery document the client reads; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct Document {
    #[serde(default)]
    pair: Option<PairDoc>,
}

#[derive(Debug, Deserialize)]
struct PairDoc {
    region: String,
    endpoint: String,
}

/// What one region's discovery request came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// A valid document: the region's pair, or none.
    Pair(Option<Pair>),
    /// An answer without a usable document: nothing learned, but no need to ask again soon.
    Ignored,
    /// No answer (transport error, 429, 5xx): ask again at the next `probe_interval`.
    NoAnswer,
}

/// Parses a discovery document of region `own`.
pub(crate) fn parse(own: &str, body: &[u8]) -> Result<Option<Pair>, String> {
    let doc: Document = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let Some(p) = doc.pair else { return Ok(None) };
    if p.region.is_empty() || p.region == own {
        return Err(format!("invalid pair name {:?}", p.region));
    }
    if !(p.endpoint.starts_with("http://") || p.endpoint.starts_with("https://")) {
        return Err(format!(
            "pair endpoint {:?} is not an http(s) URL",
            p.endpoint
        ));
    }
    Ok(Some(Pair {
        name: p.region,
        endpoint: p.endpoint.trim_end_matches('/').to_string(),
    }))
}

/// Asks configured region `idx` for its discovery document.
async fn fetch(e: &Engine, idx: usize) -> Found {
    let name = e.name(idx);
    let mut req = request(
        Method::GET,
        WELL_KNOWN.into(),
        HeaderMap::new(),
        Bytes::new(),
    );
    req.timeout = e.policy.timeout(CallKind::Sts);
    match e.send(idx, req).await {
        Err(err) => {
            tracing::debug!(region = name, error = %err, "discovery: no answer");
            Found::NoAnswer
        }
        Ok(r) if r.status.is_success() => match parse(name, &r.body) {
            Ok(pair) => Found::Pair(pair),
            Err(why) => {
                tracing::warn!(region = name, %why, "discovery: ignoring a malformed document");
                Found::Ignored
            }
        },
        Ok(r) if r.status.is_server_error() || r.status == StatusCode::TOO_MANY_REQUESTS => {
            tracing::debug!(region = name, status = %r.status, "discovery: no answer");
            Found::NoAnswer
        }
        Ok(r) => {
            tracing::debug!(region = name, status = %r.status, "discovery: no document");
            Found::Ignored
        }
    }
}

/// One round over the configured regions (every one, or only those that never answered).
/// Returns whether every region has now answered once.
pub(crate) async fn round(routes: &SpeakerRoutes) -> bool {
    let main = &routes.main;
    let answered = routes.answered.lock().expect("answered lock").clone();
    let everyone = answered.iter().all(|a| *a);
    let todo: Vec<usize> = (0..answered.len())
        .filter(|&i| everyone || !answered[i])
        .collect();
    let found = futures::future::join_all(todo.iter().map(|&i| fetch(main, i))).await;
    let mut changed = false;
    for (&i, found) in todo.iter().zip(found) {
        let pair = match found {
            Found::NoAnswer => continue,
            Found::Ignored => None,
            Found::Pair(p) => Some(p),
        };
        routes.answered.lock().expect("answered lock")[i] = true;
        let Some(pair) = pair else { continue };
        let mut pairs = routes.pairs.lock().expect("pairs lock");
        if pairs[i] != pair {
            let region = main.name(i).to_string();
            match &pair {
                Some(p) => {
                    tracing::info!(%region, pair = %p.name, endpoint = %p.endpoint, "discovered a pair")
                }
                None => tracing::info!(%region, "the region no longer has a pair"),
            }
            main.emit(ClientEvent::Discovered {
                region,
                pair: pair.as_ref().map(|p| p.name.clone()),
            });
            pairs[i] = pair;
            changed = true;
        }
    }
    if changed {
        routes.rebuild();
    }
    routes.first_round.send_replace(true);
    routes
        .answered
        .lock()
        .expect("answered lock")
        .iter()
        .all(|a| *a)
}

/// The discovery task: rounds until the client is gone.
pub(crate) async fn discovery(routes: Weak<SpeakerRoutes>) {
    loop {
        let Some(r) = routes.upgrade() else { return };
        let done = round(&r).await;
        let p = &r.main.policy;
        let wait = Duration::from_millis(if done {
            p.discovery_refresh_ms
        } else {
            p.probe_interval_ms
        });
        drop(r);
        tokio::time::sleep(wait).await;
    }
}
