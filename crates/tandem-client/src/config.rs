//! The client's configuration: regions in priority order and the resilience [`Policy`].
//!
//! One serde tree, `deny_unknown_fields` everywhere, every default in a function.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ClientError, Result};

/// The whole client configuration, as read from TOML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Regions, highest priority first.
    pub regions: Vec<RegionEntry>,
    /// Retry, breaker, failback and hedging policy.
    #[serde(default)]
    pub policy: Policy,
    /// The key callers present to the gateway (not used by the client itself).
    #[serde(default)]
    pub gateway_key: Option<String>,
    /// A file holding the gateway key, as an alternative to `gateway_key`.
    #[serde(default)]
    pub gateway_key_file: Option<PathBuf>,
}

/// One region the client may send traffic to.
///
/// In TOML a region served by one node gives `endpoint = "http://…"`; a region served by
/// several `tandem serve` nodes behind one name gives `endpoints = ["http://…", "http://…"]`
/// (exactly one of the two). The client sends a region's calls to its nodes round-robin; a
/// node that fails a try (no answer, or a 5xx) is skipped for that call, and ejected when its
/// own breaker trips, until a readiness probe passes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "RegionEntryToml", into = "RegionEntryToml")]
pub struct RegionEntry {
    /// The region's name (`westus`); unique in the file.
    pub name: String,
    /// The base URLs of the region's nodes, e.g. `["http://127.0.0.1:5001"]`; at least one.
    /// In TOML: `endpoint = "…"` for one node, `endpoints = ["…", "…"]` for several.
    pub endpoints: Vec<String>,
    /// The resource key for this region.
    #[serde(default)]
    pub key: Option<String>,
    /// A file holding the resource key (trimmed), instead of `key`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Custom speech endpoint id, sent as `cid` when a custom model is asked for.
    #[serde(default)]
    pub cid: Option<String>,
    /// Custom voice deployment id in this region, sent as `deploymentId`.
    #[serde(default)]
    pub voice_deployment_id: Option<String>,
}

/// A [`RegionEntry`] as written in TOML: `endpoint` or `endpoints`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionEntryToml {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoints: Option<Vec<String>>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    key_file: Option<PathBuf>,
    #[serde(default)]
    cid: Option<String>,
    #[serde(default)]
    voice_deployment_id: Option<String>,
}

impl TryFrom<RegionEntryToml> for RegionEntry {
    type Error = String;

    fn try_from(t: RegionEntryToml) -> std::result::Result<Self, String> {
        let name = &t.name;
        let endpoints = match (t.endpoint, t.endpoints) {
            (Some(_), Some(_)) => {
                return Err(format!(
                    "region {name}: give endpoint or endpoints, not both"
                ))
            }
            (Some(e), None) => vec![e],
            (None, Some(list)) if !list.is_empty() => list,
            _ => {
                return Err(format!(
                    "region {name}: give endpoint, or endpoints with at least one URL"
                ))
            }
        };
        let endpoints = endpoints
            .into_iter()
            .map(|u| {
                let u = u.trim().to_owned();
                if u.is_empty() || u.contains(char::is_whitespace) {
                    Err(format!("region {name}: {u:?} is not one URL"))
                } else {
                    Ok(u)
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RegionEntry {
            name: t.name,
            endpoints,
            key: t.key,
            key_file: t.key_file,
            cid: t.cid,
            voice_deployment_id: t.voice_deployment_id,
        })
    }
}

impl From<RegionEntry> for RegionEntryToml {
    fn from(r: RegionEntry) -> Self {
        let (endpoint, endpoints) = match r.endpoints.len() {
            1 => (r.endpoints.into_iter().next(), None),
            _ => (None, Some(r.endpoints)),
        };
        RegionEntryToml {
            name: r.name,
            endpoint,
            endpoints,
            key: r.key,
            key_file: r.key_file,
            cid: r.cid,
            voice_deployment_id: r.voice_deployment_id,
        }
    }
}

/// The resilience policy. Every field has a default; durations are in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Per-try timeout of speech-to-text calls (10 000).
    pub stt_timeout_ms: u64,
    /// Per-try timeout of text-to-speech and voice-list calls (5 000).
    pub tts_timeout_ms: u64,
    /// Per-try timeout of speaker-recognition calls (15 000).
    pub speaker_timeout_ms: u64,
    /// Per-try timeout of token (STS) calls, readiness probes and discovery (2 000).
    pub sts_timeout_ms: u64,
    /// Attempts per region before it counts as failed (3).
    pub max_attempts: u32,
    /// Backoff base (25).
    pub backoff_base_ms: u64,
    /// Backoff cap (1 000).
    pub backoff_cap_ms: u64,
    /// Retries allowed as a fraction of requests (0.2).
    pub retry_budget_ratio: f64,
    /// Retries always allowed per second, whatever the traffic (10).
    pub retry_budget_min_per_sec: u32,
    /// Consecutive failed calls that trip a region's breaker (5).
    pub breaker_consecutive_failures: u32,
    /// Failure ratio over the window that trips the breaker (0.5).
    pub breaker_failure_ratio: f64,
    /// Window of the failure ratio (10 000).
    pub breaker_window_ms: u64,
    /// Calls needed in the window before the ratio counts (20).
    pub breaker_min_requests: u32,
    /// First open period (1 000); doubles on each trip in a row.
    pub breaker_open_base_ms: u64,
    /// Longest open period (30 000).
    pub breaker_open_max_ms: u64,
    /// Fraction of the open period taken off at random (0.2).
    pub breaker_jitter: f64,
    /// Interval between readiness probes of open or recovering regions (500).
    pub probe_interval_ms: u64,
    /// How long a recovering region must stay healthy before traffic returns to it (10 000).
    pub failback_after_ms: u64,
    /// Speech-to-text hedging threshold; off when absent (default).
    pub hedge_stt_ms: Option<u64>,
    /// Text-to-speech hedging threshold; off when absent (default).
    pub hedge_tts_ms: Option<u64>,
    /// Voice-list hedging threshold; off when absent (default).
    pub hedge_voices_ms: Option<u64>,
    /// Public voice that ends the custom-voice fallback chain (`en-US-SltFlite`).
    pub public_fallback_voice: String,
    /// Fail fast on a hung region (true): when a try times out and the region answered
    /// nothing else meanwhile, its breaker trips at once and the call fails over, instead of
    /// spending `max_attempts` timeouts there. Timeouts are retried on the same region while
    /// it keeps answering other calls.
    pub failfast_on_hang: bool,
    /// Refresh STS tokens this long before they expire (60 000; tokens last 600 s).
    pub token_refresh_margin_ms: u64,
    /// Learn each region's pair from `GET /.well-known/tandem` (true), so that speaker calls
    /// can fail over to it even when it is not configured.
    pub discovery: bool,
    /// Interval between discovery refreshes once every region has answered once (60 000).
    pub discovery_refresh_ms: u64,
}

fn default_public_fallback_voice() -> String {
    "en-US-SltFlite".to_string()
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            stt_timeout_ms: 10_000,
            tts_timeout_ms: 5_000,
            speaker_timeout_ms: 15_000,
            sts_timeout_ms: 2_000,
            max_attempts: 3,
            backoff_base_ms: 25,
            backoff_cap_ms: 1_000,
            retry_budget_ratio: 0.2,
            retry_budget_min_per_sec: 10,
            breaker_consecutive_failures: 5,
            breaker_failure_ratio: 0.5,
            breaker_window_ms: 10_000,
            breaker_min_requests: 20,
            breaker_open_base_ms: 1_000,
            breaker_open_max_ms: 30_000,
            breaker_jitter: 0.2,
            probe_interval_ms: 500,
            failback_after_ms: 10_000,
            hedge_stt_ms: None,
            hedge_tts_ms: None,
            hedge_voices_ms: None,
            public_fallback_voice: default_public_fallback_voice(),
            failfast_on_hang: true,
            token_refresh_margin_ms: 60_000,
            discovery: true,
            discovery_refresh_ms: 60_000,
        }
    }
}

/// The kinds of call, each with its own timeout and hedging threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallKind {
    /// Speech-to-text.
    Stt,
    /// Text-to-speech.
    Tts,
    /// The voice list.
    Voices,
    /// Token issuing.
    Sts,
    /// Speaker recognition (`/speaker-recognition/…`): its own route set, which may include
    /// discovered pairs, authenticated with the resource key.
    Speaker,
}

impl CallKind {
    /// A short label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            CallKind::Stt => "stt",
            CallKind::Tts => "tts",
            CallKind::Voices => "voices",
            CallKind::Sts => "sts",
            CallKind::Speaker => "speaker",
        }
    }
}

impl Policy {
    /// The per-try timeout of a call kind.
    pub fn timeout(&self, kind: CallKind) -> Duration {
        Duration::from_millis(match kind {
            CallKind::Stt => self.stt_timeout_ms,
            CallKind::Tts | CallKind::Voices => self.tts_timeout_ms,
            CallKind::Sts => self.sts_timeout_ms,
            CallKind::Speaker => self.speaker_timeout_ms,
        })
    }

    /// The hedging threshold of a call kind, if hedging is on for it.
    pub fn hedge_after(&self, kind: CallKind) -> Option<Duration> {
        match kind {
            CallKind::Stt => self.hedge_stt_ms,
            CallKind::Tts => self.hedge_tts_ms,
            CallKind::Voices => self.hedge_voices_ms,
            CallKind::Sts | CallKind::Speaker => None,
        }
        .map(Duration::from_millis)
    }

    fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(ClientError::Config(format!("policy: {m}")));
        if self.max_attempts == 0 {
            return bad("max_attempts must be at least 1");
        }
        if self.backoff_cap_ms < self.backoff_base_ms {
            return bad("backoff_cap_ms must be >= backoff_base_ms");
        }
        if self.breaker_open_max_ms < self.breaker_open_base_ms {
            return bad("breaker_open_max_ms must be >= breaker_open_base_ms");
        }
        if !(0.0..=1.0).contains(&self.breaker_jitter)
            || !(0.0..=1.0).contains(&self.breaker_failure_ratio)
            || self.retry_budget_ratio < 0.0
        {
            return bad("ratios must be within 0..=1");
        }
        if self.probe_interval_ms == 0
            || self.breaker_consecutive_failures == 0
            || self.discovery_refresh_ms == 0
        {
            return bad(
                "probe_interval_ms, discovery_refresh_ms and breaker_consecutive_failures must be > 0",
            );
        }
        Ok(())
    }
}

impl ClientConfig {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Config(format!("reading {}: {e}", path.display())))?;
        Self::from_toml(&text)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self> {
        let cfg: ClientConfig =
            toml::from_str(text).map_err(|e| ClientError::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the rules serde cannot: at least one region, unique names, a key source each.
    pub fn validate(&self) -> Result<()> {
        if self.regions.is_empty() {
            return Err(ClientError::Config(
                "at least one [[regions]] is needed".into(),
            ));
        }
        let mut seen = HashSet::new();
        for r in &self.regions {
            if r.name.is_empty() || !seen.insert(r.name.as_str()) {
                return Err(ClientError::Config(format!(
                    "region names must be unique and non-empty: {:?}",
                    r.name
                )));
            }
            if r.key.is_none() == r.key_file.is_none() {
                return Err(ClientError::Config(format!(
                    "region {}: give exactly one of key or key_file",
                    r.name
                )));
            }
            let nodes = r.endpoints();
            if nodes.is_empty() {
                return Err(ClientError::Config(format!(
                    "region {}: give endpoint, or endpoints with at least one URL",
                    r.name
                )));
            }
            let mut urls = HashSet::new();
            for e in nodes {
                if !(e.starts_with("http://") || e.starts_with("https://")) {
                    return Err(ClientError::Config(format!(
                        "region {}: endpoint {e:?} must be an http:// or https:// URL",
                        r.name
                    )));
                }
                if !urls.insert(e.trim_end_matches('/')) {
                    return Err(ClientError::Config(format!(
                        "region {}: endpoint {e:?} is listed twice",
                        r.name
                    )));
                }
            }
        }
        if self.gateway_key.is_some() && self.gateway_key_file.is_some() {
            return Err(ClientError::Config(
                "give at most one of gateway_key or gateway_key_file".into(),
            ));
        }
        self.policy.validate()
    }

    /// The gateway key, from `gateway_key` or `gateway_key_file`, if either is set.
    pub fn gateway_key(&self) -> Result<Option<String>> {
        secret(
            self.gateway_key.as_deref(),
            self.gateway_key_file.as_deref(),
        )
    }
}

impl RegionEntry {
    /// The region's nodes (base URLs), in configuration order.
    pub fn endpoints(&self) -> Vec<&str> {
        self.endpoints.iter().map(String::as_str).collect()
    }

    /// The first node's base URL (the only one of a one-node region).
    pub fn endpoint(&self) -> &str {
        self.endpoints.first().map_or("", String::as_str)
    }

    /// The region's resource key, from `key` or `key_file`.
    pub fn resolve_key(&self) -> Result<String> {
        secret(self.key.as_deref(), self.key_file.as_deref())?
            .ok_or_else(|| ClientError::Config(format!("region {}: no key", self.name)))
    }
}

fn secret(inline: Option<&str>, file: Option<&Path>) -> Result<Option<String>> {
    match (inline, file) {
        (Some(k), _) => Ok(Some(k.to_string())),
        (None, Some(p)) => std::fs::read_to_string(p)
            .map(|s| Some(s.trim().to_string()))
            .map_err(|e| ClientError::Config(format!("reading {}: {e}", p.display()))),
        (None, None) => Ok(None),
    }
}
