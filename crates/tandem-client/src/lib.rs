//! Tandem's failover SDK: one client over several regions, in priority order.
//!
//! A region can fail in many ways; this crate decides, in one place ([`classify`]), what each
//! outcome means: retry on the same region (capped exponential backoff with full jitter, bounded
//! attempts, a retry budget so retries never become a storm), move to the next region (counting
//! against the region's circuit breaker), or return the caller's error at once. Breakers reopen
//! through `GET /readyz` probes, and traffic fails back to a higher-priority region once it has
//! been healthy for a while. Every request body is `Bytes`, so each retry, failover and hedge
//! sends identical bytes. Time is tokio time throughout, so the whole policy is tested on paused
//! time with a scripted [`Transport`].
//!
//! Speaker-recognition calls have a route set of their own: the configured regions, then the
//! pairs the regions name in `GET /.well-known/tandem` (discovery), because a region's speaker
//! data is replicated to its pair, which serves it with the primary's key during an outage.

#![deny(missing_docs)]

mod backoff;
mod breaker;
mod classify;
mod client;
mod config;
mod discovery;
mod engine;
mod error;
mod failover;
mod http;
mod nodes;
mod observe;
mod prober;
mod region;
mod speaker;
mod speaker_api;
mod token;
mod transport;
mod voice;
mod wire;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod nodes_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod speaker_tests;
#[cfg(test)]
mod tests;

pub use backoff::{Backoff, RetryBudget};
pub use breaker::{Breaker, BreakerState, ProbeEffect};
pub use classify::{classify, Class, Outcome};
pub use client::{Answered, ForwardRequest, ForwardResponse, RecognizeOptions, TandemClient};
pub use config::{CallKind, ClientConfig, Policy, RegionEntry};
pub use error::{ClientError, Result};
pub use http::HttpTransport;
pub use observe::{ClientEvent, NodeStatus, RegionStatus};
pub use speaker::TransportFactory;
pub use speaker_api::{SpeakerKind, SPEAKER_API_VERSION};
pub use token::TOKEN_LIFETIME;
pub use transport::{BodyStream, Request, Response, StreamingResponse, Transport, TransportError};
pub use voice::{rewrite_voice, SynthesisRequest, Synthesized, VoiceLink};
