//! The scenario file: regions, load, faults on a timeline, goals. One serde tree, unknown
//! fields refused, every default in a function.

use std::collections::HashSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tandem_client::Policy;

use crate::error::{DrillError, Result};

/// A whole drill, as read from TOML.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// A name for the report (defaults to the file's stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Seconds of load; faults happen within this time.
    pub duration_secs: u64,
    /// The regions, in the client's priority order (the first is the primary).
    pub regions: Vec<RegionSpec>,
    /// The load.
    #[serde(default)]
    pub load: Load,
    /// The faults, on the timeline (seconds from the start of the load).
    #[serde(default)]
    pub faults: Vec<FaultSpec>,
    /// What must hold for the drill to pass.
    #[serde(default)]
    pub goals: Goals,
    /// The SDK's policy (same fields as a regions file's `[policy]`).
    #[serde(default)]
    pub policy: Policy,
    /// Where the seeded assets come from.
    #[serde(default)]
    pub seed: Seed,
}

/// Inputs of the customer assets the drill seeds before the load (only those the load uses).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    /// The custom speech dataset (`language-data.txt` and `audio/*.wav`, like
    /// `shared/data/custom-speech-biology`), relative to the scenario file. Default:
    /// `$TANDEM_SHARED_DATA/custom-speech-biology`.
    #[serde(default)]
    pub custom_speech_data: Option<PathBuf>,
    /// Where `tandem models pull` put the Piper voice the custom voice is made of. Default:
    /// `$TANDEM_MODEL_DIR`, else `~/.cache/tandem/models`.
    #[serde(default)]
    pub model_dir: Option<PathBuf>,
}

/// One region: either one the drill starts (`tandem serve` on loopback, embedded storage: SQLite
/// and local files in the drill's temporary directory), or an existing endpoint (`endpoint`,
/// an already running region the drill neither starts nor stops). Either way it sits behind a
/// fault proxy that the clients go through.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(from = "RegionToml", into = "RegionToml")]
pub struct RegionSpec {
    /// Region name, e.g. `westus`.
    pub name: String,
    /// Its paired region (one of the scenario's regions, of the same kind: started or
    /// existing), for speaker replication.
    pub pair: Option<String>,
    /// `[backup] interval_secs` of a region the drill starts (0: off).
    pub backup_interval_secs: u64,
    /// Extra lines for the config of a region the drill starts (top-level `key = value` lines).
    pub extra_config: Vec<String>,
    /// An already running region (`http://host:port`): the drill starts no process for it.
    pub endpoint: Option<String>,
    /// A resource key of the `endpoint` region, in a file (relative to the scenario file).
    pub key_file: Option<PathBuf>,
    /// The `endpoint` region's admin token, in a file (relative to the scenario file); without
    /// it, the replication digests cannot be read and what needs them is not measured.
    pub admin_token_file: Option<PathBuf>,
    /// Whether the file gave `backup_interval_secs` (refused with `endpoint`).
    backup_interval_given: bool,
}

/// [`RegionSpec`] as written in TOML.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegionToml {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    backup_interval_secs: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    extra_config: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    admin_token_file: Option<PathBuf>,
}

impl From<RegionToml> for RegionSpec {
    fn from(t: RegionToml) -> Self {
        RegionSpec {
            name: t.name,
            pair: t.pair,
            backup_interval_secs: t
                .backup_interval_secs
                .unwrap_or_else(default_backup_interval),
            extra_config: t.extra_config,
            endpoint: t.endpoint,
            key_file: t.key_file,
            admin_token_file: t.admin_token_file,
            backup_interval_given: t.backup_interval_secs.is_some(),
        }
    }
}

impl From<RegionSpec> for RegionToml {
    fn from(r: RegionSpec) -> Self {
        let interval = r.backup_interval_given || r.endpoint.is_none();
        RegionToml {
            name: r.name,
            pair: r.pair,
            backup_interval_secs: interval.then_some(r.backup_interval_secs),
            extra_config: r.extra_config,
            endpoint: r.endpoint,
            key_file: r.key_file,
            admin_token_file: r.admin_token_file,
        }
    }
}

impl RegionSpec {
    /// Whether this is an existing endpoint (as opposed to a region the drill starts).
    pub fn is_existing(&self) -> bool {
        self.endpoint.is_some()
    }

    /// What `validate` refuses about the region's own fields.
    fn check(&self) -> std::result::Result<(), String> {
        let Some(endpoint) = &self.endpoint else {
            if self.key_file.is_some() || self.admin_token_file.is_some() {
                return Err(
                    "key_file and admin_token_file are for an existing endpoint: give \
                            endpoint too"
                        .into(),
                );
            }
            return Ok(());
        };
        check_endpoint(endpoint)?;
        if self.key_file.is_none() {
            return Err(
                "an existing endpoint needs key_file (a file holding a resource key of it)".into(),
            );
        }
        if self.backup_interval_given || !self.extra_config.is_empty() {
            return Err(
                "backup_interval_secs and extra_config configure a region the drill \
                        starts; an existing endpoint keeps its own config"
                    .into(),
            );
        }
        Ok(())
    }
}

/// An endpoint the fault proxy can relay to: `http://host:port`, no path (the proxy relays
/// TCP, and clients speak plain HTTP to it).
fn check_endpoint(endpoint: &str) -> std::result::Result<(), String> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| format!("endpoint {endpoint:?}: not a URL ({e})"))?;
    let plain = url.scheme() == "http"
        && url.host_str().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.username().is_empty()
        && url.password().is_none();
    if !plain {
        return Err(format!(
            "endpoint {endpoint:?}: give http://host:port (no https, path or credentials: the \
             drill's fault proxy relays plain HTTP)"
        ));
    }
    Ok(())
}

fn default_backup_interval() -> u64 {
    10
}

/// The load generator: calls per second, at most `concurrency` in flight, and a weighted mix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Load {
    /// Calls started per second.
    pub rate: f64,
    /// Calls in flight at most; a tick finding none free is counted as skipped.
    pub concurrency: usize,
    /// Weight of speech-to-text calls (default endpoint).
    pub stt: u32,
    /// Weight of text-to-speech calls with a public voice.
    pub tts: u32,
    /// Weight of speaker verification calls (a profile enrolled in the primary).
    pub speaker_verify: u32,
    /// Weight of speaker enrollment calls (short audio added to the drill's profile); each one
    /// acknowledged must be found in every live region of the pair at the end.
    pub speaker_enroll: u32,
    /// Weight of speech-to-text calls on the custom speech endpoint (`cid`): the biology model,
    /// trained in the first region, copied to its pair and deployed in both.
    pub stt_custom: u32,
    /// Weight of text-to-speech calls with the custom voice (deployed in the first region,
    /// copied to its pair and deployed there; the SDK falls back to the public voice).
    pub tts_custom: u32,
    /// Share of the calls sent through a `tandem gateway` the drill starts in front of every
    /// region, as an Azure script would call it, instead of through the SDK (0 to 1).
    pub gateway_share: f64,
    /// The public voice for TTS and for the generated audio.
    pub voice: String,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            rate: 4.0,
            concurrency: 4,
            stt: 1,
            tts: 0,
            speaker_verify: 0,
            speaker_enroll: 0,
            stt_custom: 0,
            tts_custom: 0,
            gateway_share: 0.0,
            voice: "en-US-SltFlite".into(),
        }
    }
}

/// One fault at a time on the timeline. In TOML: `at_secs`, `region`, `action` and the
/// action's own field (`status` for `status`, `delay_ms` for `delay`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "FaultToml", into = "FaultToml")]
pub struct FaultSpec {
    /// Seconds from the start of the load.
    pub at_secs: f64,
    /// The region it hits.
    pub region: String,
    /// What happens.
    pub action: Action,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultToml {
    at_secs: f64,
    region: String,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
}

impl TryFrom<FaultToml> for FaultSpec {
    type Error = String;

    fn try_from(t: FaultToml) -> std::result::Result<Self, String> {
        let action = match (t.action.as_str(), t.status, t.delay_ms) {
            ("kill", None, None) => Action::Kill,
            ("stop", None, None) => Action::Stop,
            ("cont", None, None) => Action::Cont,
            ("restart", None, None) => Action::Restart,
            ("blackhole", None, None) => Action::Blackhole,
            ("heal", None, None) => Action::Heal,
            ("partition", None, None) => Action::Partition,
            ("heal_partition", None, None) => Action::HealPartition,
            ("status", Some(status), None) if (100..600).contains(&status) => {
                Action::Status { status }
            }
            ("delay", None, Some(delay_ms)) => Action::Delay { delay_ms },
            (a, _, _) => {
                return Err(format!(
                    "fault at {} s: action {a:?} with these fields is not one of kill, stop, \
                     cont, restart, blackhole, heal, status (status = 100..599), delay (delay_ms), \
                     partition, heal_partition",
                    t.at_secs
                ))
            }
        };
        Ok(FaultSpec {
            at_secs: t.at_secs,
            region: t.region,
            action,
        })
    }
}

impl From<FaultSpec> for FaultToml {
    fn from(f: FaultSpec) -> Self {
        let (action, status, delay_ms) = match f.action {
            Action::Kill => ("kill", None, None),
            Action::Stop => ("stop", None, None),
            Action::Cont => ("cont", None, None),
            Action::Restart => ("restart", None, None),
            Action::Blackhole => ("blackhole", None, None),
            Action::Heal => ("heal", None, None),
            Action::Partition => ("partition", None, None),
            Action::HealPartition => ("heal_partition", None, None),
            Action::Status { status } => ("status", Some(status), None),
            Action::Delay { delay_ms } => ("delay", None, Some(delay_ms)),
        };
        FaultToml {
            at_secs: f.at_secs,
            region: f.region,
            action: action.into(),
            status,
            delay_ms,
        }
    }
}

/// A fault, or the end of one.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `kill -9` the region's process.
    Kill,
    /// `SIGSTOP`: a hung region (the kernel still accepts connections).
    Stop,
    /// `SIGCONT`: a stopped region resumes.
    Cont,
    /// Start the region again on its data (killing it first if it still runs); done once ready.
    Restart,
    /// The proxy accepts connections and never answers.
    Blackhole,
    /// The proxy answers every request with this status (e.g. 503).
    Status {
        /// HTTP status.
        status: u16,
    },
    /// The proxy relays after a delay.
    Delay {
        /// Milliseconds added to each new connection.
        delay_ms: u64,
    },
    /// The proxy relays faithfully again.
    Heal,
    /// Cuts the replication link between the region and its pair, both ways (their
    /// `/internal/` peer requests hang), while clients still reach both regions.
    Partition,
    /// Restores the link cut by `partition`.
    HealPartition,
}

impl Action {
    /// Whether this starts an outage (as opposed to ending one).
    pub fn is_disruptive(&self) -> bool {
        !matches!(
            self,
            Action::Cont
                | Action::Restart
                | Action::Heal
                | Action::Partition
                | Action::HealPartition
        )
    }

    /// Whether this acts on the link between the region and its pair (not on what clients see).
    pub fn is_partition(&self) -> bool {
        matches!(self, Action::Partition | Action::HealPartition)
    }

    /// Whether the fault proxy in front of the region does it (the only faults an existing
    /// endpoint takes).
    pub fn is_proxy(&self) -> bool {
        matches!(
            self,
            Action::Blackhole | Action::Status { .. } | Action::Delay { .. } | Action::Heal
        )
    }

    /// The action's name in the scenario.
    pub fn name(&self) -> String {
        match self {
            Action::Kill => "kill -9".into(),
            Action::Stop => "SIGSTOP".into(),
            Action::Cont => "SIGCONT".into(),
            Action::Restart => "restart".into(),
            Action::Blackhole => "blackhole".into(),
            Action::Status { status } => format!("inject {status}"),
            Action::Delay { delay_ms } => format!("delay {delay_ms} ms"),
            Action::Heal => "heal".into(),
            Action::Partition => "partition".into(),
            Action::HealPartition => "heal partition".into(),
        }
    }
}

/// Goals; each one given is checked, and a missed one fails the drill.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Goals {
    /// Successful calls / all calls, over the whole run (every kind).
    #[serde(default)]
    pub min_success_ratio: Option<f64>,
    /// Failed STT and TTS calls (default endpoints), over the whole run.
    #[serde(default)]
    pub max_failed_calls: Option<u64>,
    /// p99 latency of default-endpoint calls during failover minus before the first fault.
    #[serde(default)]
    pub max_added_p99_ms: Option<f64>,
    /// From the first fault to the first speaker call answered by the pair.
    #[serde(default)]
    pub max_speaker_failover_secs: Option<f64>,
    /// From the primary being ready again to the first speaker call it answers.
    #[serde(default)]
    pub max_speaker_failback_secs: Option<f64>,
    /// Age of the faulted region's newest backup at each disruptive fault.
    #[serde(default)]
    pub max_backup_age_secs: Option<f64>,
    /// Enrollments the client saw acknowledged but missing from a live region of the pair at
    /// the end of the run, once both have converged.
    #[serde(default)]
    pub max_enrollments_lost: Option<u64>,
    /// Upper bound of the p99 replication lag of the first region's speaker changes into its
    /// pair over the run (commit → apply, as the pair measured it).
    #[serde(default)]
    pub max_replication_lag_p99_secs: Option<f64>,
    /// From the first fault on the first region to the first custom speech (`cid`) call its
    /// pair answered.
    #[serde(default)]
    pub max_custom_speech_failover_secs: Option<f64>,
    /// From the first fault on the first region to the first custom voice call answered by
    /// another link of the chain (the pair's copy, or the public voice).
    #[serde(default)]
    pub max_custom_voice_failover_secs: Option<f64>,
    /// Failed custom speech and custom voice calls, over the whole run.
    #[serde(default)]
    pub max_failed_custom_calls: Option<u64>,
}

impl Scenario {
    /// Parses and checks a scenario.
    pub fn from_toml(text: &str) -> Result<Self> {
        let s: Scenario = toml::from_str(text).map_err(|e| DrillError::Scenario(e.to_string()))?;
        s.validate()?;
        Ok(s)
    }

    /// Checks what serde cannot: names, references, the timeline.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(DrillError::Scenario(m));
        if self.regions.is_empty() {
            return bad("at least one [[regions]] is needed".into());
        }
        let mut names = HashSet::new();
        for r in &self.regions {
            let ok = !r.name.is_empty()
                && r.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !ok {
                return bad(format!("region name {:?}: use a-z, 0-9 and -", r.name));
            }
            if !names.insert(r.name.as_str()) {
                return bad(format!("region {} is declared twice", r.name));
            }
            if let Err(m) = r.check() {
                return bad(format!("region {}: {m}", r.name));
            }
        }
        for r in &self.regions {
            if let Some(p) = &r.pair {
                let Some(other) = self
                    .regions
                    .iter()
                    .find(|o| &o.name == p && o.name != r.name)
                else {
                    return bad(format!("region {}: pair {p} is not another region", r.name));
                };
                if other.is_existing() != r.is_existing() {
                    return bad(format!(
                        "region {}: pair {p} is {}; a region the drill starts can only pair \
                         with another one it starts (it cannot configure an existing \
                         endpoint's peers)",
                        r.name,
                        if other.is_existing() {
                            "an existing endpoint"
                        } else {
                            "a region the drill starts"
                        }
                    ));
                }
            }
        }
        if self.duration_secs == 0 {
            return bad("duration_secs must be > 0".into());
        }
        let l = &self.load;
        if !(l.rate > 0.0 && l.rate <= 1000.0) || l.concurrency == 0 {
            return bad("load: rate must be in (0, 1000] and concurrency > 0".into());
        }
        if l.stt + l.tts + l.speaker_verify + l.speaker_enroll + l.stt_custom + l.tts_custom == 0 {
            return bad(
                "load: give at least one of stt, tts, stt_custom, tts_custom, speaker_verify, \
                 speaker_enroll a weight"
                    .into(),
            );
        }
        if !(0.0..=1.0).contains(&l.gateway_share) {
            return bad("load: gateway_share must be in [0, 1]".into());
        }
        if l.stt_custom + l.tts_custom > 0 && self.regions[0].pair.is_none() {
            return bad(
                "load: stt_custom and tts_custom need the first region to have a pair (the \
                 custom model and voice are copied there)"
                    .into(),
            );
        }
        if l.speaker_verify + l.speaker_enroll > 0 && self.regions[0].pair.is_none() {
            return bad(
                "load: speaker_verify and speaker_enroll need the first region to have a pair"
                    .into(),
            );
        }
        for f in &self.faults {
            if !names.contains(f.region.as_str()) {
                return bad(format!("fault at {} s: no region {}", f.at_secs, f.region));
            }
            let paired = self
                .regions
                .iter()
                .any(|r| r.name == f.region && r.pair.is_some());
            if f.action.is_partition() && !paired {
                return bad(format!(
                    "fault at {} s: {} has no pair to partition from",
                    f.at_secs, f.region
                ));
            }
            let existing = self
                .regions
                .iter()
                .any(|r| r.name == f.region && r.is_existing());
            if existing && !f.action.is_proxy() {
                return bad(format!(
                    "fault at {} s: {} on {}, an existing endpoint: the drill does not own its \
                     process nor its replication link; use blackhole, status, delay or heal",
                    f.at_secs,
                    f.action.name(),
                    f.region
                ));
            }
            if !(f.at_secs >= 0.0 && f.at_secs < self.duration_secs as f64) {
                return bad(format!("fault at {} s: outside the run", f.at_secs));
            }
        }
        Ok(())
    }

    /// The faults in time order.
    pub fn timeline(&self) -> Vec<FaultSpec> {
        let mut f = self.faults.clone();
        f.sort_by(|a, b| a.at_secs.total_cmp(&b.at_secs));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A drill-started `westus` and an existing `eastus` (with `extra` in its table), proxy
    /// faults on `eastus`, then `tail`.
    fn mixed_then(extra: &str, tail: &str) -> Result<Scenario> {
        Scenario::from_toml(&format!(
            r#"
duration_secs = 8
[[regions]]
name = "westus"
[[regions]]
name = "eastus"
endpoint = "http://127.0.0.1:7000"
key_file = "eastus.key"
{extra}
[load]
tts = 1
[[faults]]
at_secs = 3
region = "eastus"
action = "status"
status = 503
[[faults]]
at_secs = 5
region = "eastus"
action = "heal"
{tail}
"#
        ))
    }

    fn mixed(extra: &str) -> Result<Scenario> {
        mixed_then(extra, "")
    }

    fn refused(r: Result<Scenario>, needle: &str) {
        match r {
            Err(DrillError::Scenario(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected a scenario error with {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn a_mixed_scenario_with_proxy_faults_on_the_existing_endpoint_passes() {
        let s = mixed("admin_token_file = \"eastus.token\"").unwrap();
        assert!(!s.regions[0].is_existing());
        assert!(s.regions[1].is_existing());
        assert_eq!(s.regions[1].key_file, Some(PathBuf::from("eastus.key")));
        // And it survives a round trip through TOML.
        let again = Scenario::from_toml(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(again.regions[1].endpoint, s.regions[1].endpoint);
        assert_eq!(again.regions[0].backup_interval_secs, 10);
    }

    #[test]
    fn kill_on_an_existing_endpoint_is_refused() {
        let fault = |action: &str| {
            format!("[[faults]]\nat_secs = 4\nregion = \"eastus\"\naction = \"{action}\"")
        };
        refused(mixed_then("", &fault("kill")), "existing endpoint");
        for action in ["stop", "cont", "restart", "partition", "heal_partition"] {
            assert!(mixed_then("", &fault(action)).is_err(), "{action}");
        }
        // The same fault on the region the drill starts is fine.
        mixed_then("", &fault("kill").replace("eastus", "westus")).unwrap();
    }

    #[test]
    fn an_endpoint_without_key_file_is_refused() {
        let r = Scenario::from_toml(
            "duration_secs = 5\n[[regions]]\nname = \"eastus\"\nendpoint = \"http://127.0.0.1:7000\"\n",
        );
        refused(r, "needs key_file");
    }

    #[test]
    fn backup_interval_or_extra_config_with_an_endpoint_is_refused() {
        refused(mixed("backup_interval_secs = 5"), "backup_interval_secs");
        refused(mixed("extra_config = [\"x = 1\"]"), "extra_config");
    }

    #[test]
    fn a_bad_endpoint_or_a_pair_across_kinds_is_refused() {
        let one = |endpoint: &str| {
            Scenario::from_toml(&format!(
                "duration_secs = 5\n[[regions]]\nname = \"eastus\"\nendpoint = \"{endpoint}\"\n\
                 key_file = \"k\"\n"
            ))
        };
        refused(one("https://example.com:443"), "http://host:port");
        refused(one("http://127.0.0.1:7000/prefix"), "http://host:port");
        one("http://localhost:7000").unwrap();
        refused(mixed("pair = \"westus\""), "can only pair");
    }
}
