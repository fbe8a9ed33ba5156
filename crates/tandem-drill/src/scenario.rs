//! The scenario file: regions, load, faults on a timeline, goals. One serde tree, unknown
//! fields refused, every default in a function.

use std::collections::HashSet;

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
}

/// One region the drill starts: `tandem serve` on loopback, embedded storage (SQLite and local
/// files in the drill's temporary directory), behind a fault proxy.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// Region name, e.g. `westus`.
    pub name: String,
    /// Its paired region (one of the scenario's regions), for speaker replication.
    #[serde(default)]
    pub pair: Option<String>,
    /// `[backup] interval_secs` of the region (0: off).
    #[serde(default = "default_backup_interval")]
    pub backup_interval_secs: u64,
    /// Extra lines for the region's config (top-level `key = value` lines).
    #[serde(default)]
    pub extra_config: Vec<String>,
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
        }
        for r in &self.regions {
            if let Some(p) = &r.pair {
                if !names.contains(p.as_str()) || p == &r.name {
                    return bad(format!("region {}: pair {p} is not another region", r.name));
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
        if l.stt + l.tts + l.speaker_verify + l.speaker_enroll == 0 {
            return bad(
                "load: give at least one of stt, tts, speaker_verify, speaker_enroll a weight"
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
