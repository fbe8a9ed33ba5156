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

/// The raw (still percent-encoded) value of the first `name` parameter of `pq`'s query.
pub(crate) fn param_value<'a>(pq: &'a str, name: &str) -> Option<&'a str> {
    let (_, q) = pq.split_once('?')?;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// `pq` with every `name` parameter replaced by `name=value` (`value` already encoded), or
/// removed when `value` is `None`.
pub(crate) fn replace_param(pq: &str, name: &str, value: Option<&str>) -> String {
    let Some((path, q)) = pq.split_once('?') else {
        return pq.to_owned();
    };
    let kept: Vec<String> = q
        .split('&')
        .filter_map(|kv| {
            let k = kv.split_once('=').map_or(kv, |(k, _)| k);
            if k != name {
                Some(kv.to_owned())
            } else {
                value.map(|v| format!("{name}={v}"))
            }
        })
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
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
