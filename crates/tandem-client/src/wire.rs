//! Small pieces of the Azure wire format: request values, error JSON, query encoding.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method};

use crate::client::Answered;
use crate::error::{ClientError, Result};
use crate::transport::{Request, Response};

pub(crate) fn request(
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
    body: Bytes,
) -> Request {
    Request {
        method,
        path_and_query,
        headers,
        body,
        timeout: Duration::ZERO, // set by the engine from the call kind
    }
}

pub(crate) fn json(a: Answered<Response>) -> Result<Answered<serde_json::Value>> {
    let value =
        serde_json::from_slice(&a.value.body).map_err(|e| ClientError::AllRegionsFailed {
            attempts: a.attempts,
            last: format!("{}: invalid JSON answer: {e}", a.region),
        })?;
    Ok(Answered {
        value,
        region: a.region,
        node: a.node,
        attempts: a.attempts,
        failovers: a.failovers,
    })
}

/// `(code, message)` from Azure's error JSON, or the status reason and body text.
pub(crate) fn error_fields(r: &Response) -> (String, String) {
    let v: Option<serde_json::Value> = serde_json::from_slice(&r.body).ok();
    let field = |k: &str| {
        v.as_ref()
            .and_then(|v| v.get("error").unwrap_or(v).get(k))
            .and_then(|s| s.as_str())
            .map(str::to_string)
    };
    let code =
        field("code").unwrap_or_else(|| r.status.canonical_reason().unwrap_or("Error").to_string());
    let message = field("message")
        .unwrap_or_else(|| String::from_utf8_lossy(&r.body).chars().take(500).collect());
    (code, message)
}

pub(crate) fn caller_error(r: &Response, region: String) -> ClientError {
    let (code, message) = error_fields(r);
    ClientError::Caller {
        status: r.status.as_u16(),
        code,
        message,
        region,
    }
}

pub(crate) fn has_param(pq: &str, name: &str) -> bool {
    pq.split_once('?')
        .map(|(_, q)| q.split('&').any(|kv| kv.split('=').next() == Some(name)))
        .unwrap_or(false)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
