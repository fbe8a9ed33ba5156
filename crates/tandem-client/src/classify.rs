//! The one place an outcome becomes a decision: retry here, fail over, or give up.

use std::time::Duration;

use crate::transport::TransportError;

/// What happened to one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The region answered with this status (and `Retry-After`, if it sent one).
    Status {
        /// HTTP status code.
        status: u16,
        /// The parsed `Retry-After` header.
        retry_after: Option<Duration>,
        /// The region asked for another region to take the call (`x-tandem-redirect`, sent by
        /// a region whose speaker data is still catching up with its pair).
        redirect: bool,
    },
    /// No answer arrived.
    Transport(TransportError),
}

/// The decision for an [`Outcome`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// 2xx: done.
    Success,
    /// Worth retrying on the same region after a backoff (at least `retry_after`).
    Transient {
        /// The region's `Retry-After`, honoured as a lower bound of the delay.
        retry_after: Option<Duration>,
    },
    /// The region is unusable: count against its breaker and move to the next region.
    Persistent,
    /// The request itself is wrong: return it at once, never fail over.
    Caller,
    /// The credentials were refused: refresh the token once, then give up.
    Unauthorized,
}

/// Classifies every outcome.
///
/// | outcome | class |
/// |---|---|
/// | 2xx | `Success` |
/// | reset, timeout, 408, 429, 500, 502, 503, 504 | `Transient` (429/503 keep `Retry-After`) |
/// | refused, DNS, TLS, other transport errors, other 5xx, any 5xx with `x-tandem-redirect` | `Persistent` |
/// | 400, 403, 404, 413, 415 and other 4xx | `Caller` |
/// | 401 | `Unauthorized` |
///
/// Transient failures become persistent when the region's attempts run out (the engine decides
/// that, since it is a matter of count, not of the outcome itself).
pub fn classify(outcome: &Outcome) -> Class {
    match outcome {
        Outcome::Transport(e) => match e {
            TransportError::Reset | TransportError::Timeout => {
                Class::Transient { retry_after: None }
            }
            TransportError::Refused
            | TransportError::Dns
            | TransportError::Tls
            | TransportError::Other(_) => Class::Persistent,
        },
        Outcome::Status {
            status: 500..=599,
            redirect: true,
            ..
        } => Class::Persistent,
        Outcome::Status {
            status,
            retry_after,
            ..
        } => match *status {
            200..=299 => Class::Success,
            401 => Class::Unauthorized,
            408 | 500 | 502 | 504 => Class::Transient { retry_after: None },
            429 | 503 => Class::Transient {
                retry_after: *retry_after,
            },
            400..=499 => Class::Caller,
            _ => Class::Persistent,
        },
    }
}

/// Whether an outcome is the fault of the node that gave it, so that the same request is
/// tried at once on another node of the region (when it has several) and the node's breaker
/// counts it: no answer at all (refused, reset, timeout, DNS, TLS…) or a 5xx. Not a node's
/// fault: any answer below 500 (408 and 429 included: the node is alive, and a quota is the
/// region's), and a 5xx with `x-tandem-redirect`, which speaks for the whole region.
///
/// | outcome | node fault |
/// |---|---|
/// | any transport error | yes |
/// | 500, 501, 502, 503, 504 … | yes |
/// | 5xx with `x-tandem-redirect` | no |
/// | 2xx, 4xx (408 and 429 included) | no |
pub(crate) fn node_fault(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Transport(_) => true,
        Outcome::Status {
            status, redirect, ..
        } => (500..=599).contains(status) && !redirect,
    }
}

/// Whether the answer carries `x-tandem-redirect` (any value).
pub(crate) fn redirect(headers: &http::HeaderMap) -> bool {
    headers.contains_key("x-tandem-redirect")
}

/// Parses a `Retry-After` header given in seconds (the HTTP-date form is ignored).
pub(crate) fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get(http::header::RETRY_AFTER)?.to_str().ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}
