//! The report: computed from the samples and the fault log alone (a pure function, unit-tested
//! on made-up samples), then rendered as JSON and Markdown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::lag::LagSeen;
use crate::load::{Kind, Sample};
use crate::scenario::{Goals, Scenario};

/// The report's format version (bumped when a field changes meaning or goes away).
pub const REPORT_FORMAT_VERSION: u32 = 1;

/// A fault as it happened.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRecord {
    /// Scheduled time, seconds from the start of the load.
    pub at_secs: f64,
    /// When it took effect (a restart: when the region was ready again).
    pub done_secs: f64,
    /// The region.
    pub region: String,
    /// What happened (`kill -9`, `SIGSTOP`, …).
    pub action: String,
    /// Whether it starts an outage.
    pub disruptive: bool,
    /// Age of the region's newest backup just before the fault, from its `/status.json`
    /// (`None`: no backup yet, or the region did not answer).
    pub backup_age_secs: Option<f64>,
    /// Set when the fault could not be applied.
    pub error: Option<String>,
}

/// One second of the timeline (calls by their start time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Second {
    /// Seconds from the start of the load.
    pub t: u64,
    /// Calls that succeeded.
    pub ok: u64,
    /// Calls that failed.
    pub failed: u64,
    /// Median latency, ms (all calls of the second).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
}

/// Counts and latency of a set of calls.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Calls.
    pub calls: u64,
    /// Successful calls.
    pub ok: u64,
    /// Failed calls.
    pub failed: u64,
    /// Median latency, ms.
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, ms.
    pub p99_ms: Option<f64>,
}

/// Default endpoints (STT, TTS) around the failover.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failover {
    /// Calls before the first disruptive fault.
    pub baseline: Stats,
    /// Calls from the first disruptive fault until the primary answered again after the last
    /// fault (or the end of the run).
    pub during: Stats,
    /// The window, seconds from the start: `[start, end]`.
    pub window_secs: Option<[f64; 2]>,
    /// Failed default-endpoint calls over the whole run.
    pub failed_calls: u64,
    /// p50 during minus p50 before, ms.
    pub added_p50_ms: Option<f64>,
    /// p99 during minus p99 before, ms.
    pub added_p99_ms: Option<f64>,
    /// From the last fault's completion to the first default call the primary answered.
    pub failback_secs: Option<f64>,
}

/// Speaker recognition, from the SDK's view.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Speaker {
    /// The region that holds the profile.
    pub home: String,
    /// Speaker calls that failed.
    pub failed_calls: u64,
    /// From the latest disruptive fault on the home region before the pair's first answer to
    /// the end of that call.
    pub failover_secs: Option<f64>,
    /// From the home region being ready again (its last restart) to the end of the first call
    /// it answered after that.
    pub failback_secs: Option<f64>,
    /// Enrollment calls the client saw acknowledged (201).
    pub enrollments_acknowledged: u64,
    /// Enrollment calls that failed: the region may or may not have kept them.
    pub enrollments_unacknowledged: u64,
    /// Enrollments made by the load found in each live region of the pair at the end (`None`:
    /// the profile could not be read there). Empty without a read-back.
    pub enrollments_found: BTreeMap<String, Option<u64>>,
    /// Replication lag into each live region of the pair over the run, as the region measured
    /// it (commit at the pair → apply here, for each change applied).
    #[serde(default)]
    pub replication_lag: BTreeMap<String, LagSeen>,
    /// Whether the regions read back had converged (equal replication digests) first
    /// (`None`: no read-back, or the digests could not be read).
    pub enrollments_converged: Option<bool>,
    /// Acknowledged enrollments missing from the region that has the fewest (`None`: no region
    /// could be read back). Failed calls the region kept anyway can hide a loss of the same
    /// number, so `enrollments_unacknowledged` bounds that blind spot.
    pub enrollments_lost: Option<u64>,
}

/// Custom speech (`cid` calls): the primary's model and its copy in the pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomSpeech {
    /// The region the model was trained in.
    pub home: String,
    /// The region holding the copy.
    pub secondary: Option<String>,
    /// The calls.
    pub calls: Stats,
    /// Successful calls by the region that answered.
    pub served_by: BTreeMap<String, u64>,
    /// Time to serve from the secondary: from the latest disruptive fault on the home region
    /// before the secondary's first answer to the end of that call.
    pub failover_secs: Option<f64>,
    /// From the home region being ready again (its last restart) to the end of the first call
    /// it answered after that.
    pub failback_secs: Option<f64>,
}

/// Custom voice calls: which link of the voice chain answered, and when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomVoice {
    /// The region whose deployment is the chain's first link.
    pub home: String,
    /// The calls.
    pub calls: Stats,
    /// Successful calls by link and region (`custom westus`, `custom-secondary eastus`, …).
    pub by_link: BTreeMap<String, u64>,
    /// The links in the order they answered: each run of consecutive calls (by start time)
    /// answered by the same link and region.
    pub spans: Vec<LinkSpan>,
    /// From the latest disruptive fault on the home region before the first answer by another
    /// link to the end of that call.
    pub failover_secs: Option<f64>,
    /// From the home region being ready again to the end of the first call its custom voice
    /// answered after that.
    pub failback_secs: Option<f64>,
}

/// A run of custom voice calls answered by one link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkSpan {
    /// `custom`, `custom-secondary` or `public`.
    pub link: String,
    /// The region.
    pub region: String,
    /// Start of its first call, seconds from the start of the load.
    pub from_secs: f64,
    /// Start of its last call.
    pub to_secs: f64,
    /// Calls answered.
    pub calls: u64,
}

/// What the drill read back from the pair at the end of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Readback {
    /// Enrollments of the profile made at setup (not the load's).
    pub setup: u64,
    /// The profile's `enrollmentsCount` in each live region (`None`: not readable).
    pub count: BTreeMap<String, Option<u64>>,
    /// Whether the regions' replication digests matched before the read.
    /// (`None`: not known, an existing region of the pair has no admin token for its digest.)
    pub converged: Option<bool>,
    /// Replication lag into each live region of the pair over the run.
    #[serde(default)]
    pub replication_lag: BTreeMap<String, LagSeen>,
}

/// One goal, checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoalCheck {
    /// The goal's name in the scenario.
    pub name: String,
    /// The bound.
    pub goal: f64,
    /// What was measured (`None`: could not be measured, which misses the goal).
    pub measured: Option<f64>,
    /// Whether it held.
    pub passed: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// The scenario's name.
    pub scenario: String,
    /// Seconds of load.
    pub duration_secs: u64,
    /// All calls.
    pub totals: Stats,
    /// Successful / all calls.
    pub success_ratio: Option<f64>,
    /// Ticks that found every slot busy (the load could not keep its rate).
    pub skipped: u64,
    /// Per kind of call.
    pub by_kind: BTreeMap<Kind, Stats>,
    /// Client-visible errors by type.
    pub errors: BTreeMap<String, u64>,
    /// The first message of each error type.
    pub error_examples: BTreeMap<String, String>,
    /// The faults as they happened.
    pub faults: Vec<FaultRecord>,
    /// Default endpoints around the failover.
    pub failover: Failover,
    /// Speaker recognition, when the load had speaker calls.
    pub speaker: Option<Speaker>,
    /// Custom speech, when the load had `cid` calls.
    #[serde(default)]
    pub custom_speech: Option<CustomSpeech>,
    /// Custom voice, when the load had custom voice calls.
    #[serde(default)]
    pub custom_voice: Option<CustomVoice>,
    /// Calls by the way they went: `sdk` and `gateway` (when part of the load used it).
    #[serde(default)]
    pub by_path: BTreeMap<String, Stats>,
    /// Every goal of the scenario, checked.
    pub goals: Vec<GoalCheck>,
    /// Whether every goal held.
    pub passed: bool,
    /// Per-second timeline.
    pub timeline: Vec<Second>,
}

/// Nearest-rank percentile of `sorted` (ascending); `None` when empty.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Counts and percentiles of `samples`.
pub fn stats<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> Stats {
    let mut lat = Vec::new();
    let mut s = Stats::default();
    for x in samples {
        s.calls += 1;
        if x.error.is_none() {
            s.ok += 1;
        } else {
            s.failed += 1;
        }
        lat.push(x.latency_ms);
    }
    lat.sort_by(f64::total_cmp);
    s.p50_ms = percentile(&lat, 50.0);
    s.p99_ms = percentile(&lat, 99.0);
    s
}

fn diff(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    Some(a? - b?)
}

/// Builds the report from what happened.
pub fn build(
    scenario: &Scenario,
    name: &str,
    samples: &[Sample],
    skipped: u64,
    faults: &[FaultRecord],
    readback: Option<&Readback>,
) -> Report {
    let primary = scenario.regions[0].name.clone();
    let totals = stats(samples);
    let mut by_kind: BTreeMap<Kind, Vec<&Sample>> = BTreeMap::new();
    let mut errors = BTreeMap::new();
    let mut error_examples = BTreeMap::new();
    for s in samples {
        by_kind.entry(s.kind).or_default().push(s);
        if let Some(e) = &s.error {
            *errors.entry(e.clone()).or_insert(0) += 1;
            if let Some(m) = &s.message {
                error_examples.entry(e.clone()).or_insert_with(|| m.clone());
            }
        }
    }
    let by_kind = by_kind.into_iter().map(|(k, v)| (k, stats(v))).collect();

    let mut timeline = Vec::new();
    for t in 0..scenario.duration_secs {
        let sec = samples.iter().filter(|s| s.start as u64 == t);
        let st = stats(sec);
        timeline.push(Second {
            t,
            ok: st.ok,
            failed: st.failed,
            p50_ms: st.p50_ms,
            p99_ms: st.p99_ms,
        });
    }

    let failover = failover(samples, faults, &primary);
    let home_pair = scenario.regions[0].pair.clone();
    let speaker = samples
        .iter()
        .any(|s| s.kind.is_speaker())
        .then(|| speaker(samples, faults, &primary, home_pair.as_deref(), readback));

    let pair = home_pair.as_deref();
    let custom_speech = samples
        .iter()
        .any(|s| s.kind == Kind::SttCustom)
        .then(|| custom_speech(samples, faults, &primary, pair));
    let custom_voice = samples
        .iter()
        .any(|s| s.kind == Kind::TtsCustom)
        .then(|| custom_voice(samples, faults, &primary));
    let mut by_path = BTreeMap::new();
    if samples.iter().any(|s| s.gateway) {
        for (path, gateway) in [("sdk", false), ("gateway", true)] {
            by_path.insert(
                path.to_owned(),
                stats(samples.iter().filter(|s| s.gateway == gateway)),
            );
        }
    }

    let mut goals = check(
        &scenario.goals,
        &totals,
        &failover,
        speaker.as_ref(),
        faults,
    );
    let g = &scenario.goals;
    let mut at_most = |name: &str, goal: Option<f64>, measured: Option<f64>| {
        if let Some(goal) = goal {
            goals.push(GoalCheck {
                name: name.into(),
                goal,
                measured,
                passed: measured.is_some_and(|m| m <= goal),
            });
        }
    };
    let pair_lag = speaker.as_ref().and_then(|sp| {
        let pair = home_pair.as_deref()?;
        sp.replication_lag.get(pair)?.p99_at_most_secs
    });
    at_most(
        "max_replication_lag_p99_secs",
        g.max_replication_lag_p99_secs,
        pair_lag,
    );
    at_most(
        "max_custom_speech_failover_secs",
        g.max_custom_speech_failover_secs,
        custom_speech.as_ref().and_then(|c| c.failover_secs),
    );
    at_most(
        "max_custom_voice_failover_secs",
        g.max_custom_voice_failover_secs,
        custom_voice.as_ref().and_then(|c| c.failover_secs),
    );
    let failed_custom = samples
        .iter()
        .filter(|s| s.kind.is_custom() && s.error.is_some())
        .count();
    at_most(
        "max_failed_custom_calls",
        g.max_failed_custom_calls.map(|x| x as f64),
        Some(failed_custom as f64),
    );
    let passed = goals.iter().all(|g| g.passed);
    Report {
        format_version: REPORT_FORMAT_VERSION,
        scenario: name.to_owned(),
        duration_secs: scenario.duration_secs,
        success_ratio: (totals.calls > 0).then(|| totals.ok as f64 / totals.calls as f64),
        totals,
        skipped,
        by_kind,
        errors,
        error_examples,
        faults: faults.to_vec(),
        failover,
        speaker,
        custom_speech,
        custom_voice,
        by_path,
        goals,
        passed,
        timeline,
    }
}

/// Seconds from the outage to the end of the first call `answered_by` accepts: the outage is
/// the latest of `outages` (disruptive faults on the home region) before that answer, so a
/// delay before a blackhole does not count as the start.
fn time_to_answer(
    calls: &[&Sample],
    outages: &[f64],
    answered_by: impl Fn(&Sample) -> bool,
) -> Option<f64> {
    let &first = outages.first()?;
    let answer = calls
        .iter()
        .filter(|s| s.end() >= first && s.error.is_none() && answered_by(s))
        .map(|s| s.end())
        .min_by(f64::total_cmp)?;
    let from = outages
        .iter()
        .copied()
        .filter(|&a| a <= answer)
        .fold(first, f64::max);
    Some(answer - from)
}

/// The disruptive faults on `home`, in time order.
fn outages(faults: &[FaultRecord], home: &str) -> Vec<f64> {
    faults
        .iter()
        .filter(|f| f.disruptive && f.region == home)
        .map(|f| f.at_secs)
        .collect()
}

/// From `home` being ready again (its last successful restart) to the end of the first call
/// started after that which `answered_by` accepts.
fn time_to_failback(
    calls: &[&Sample],
    faults: &[FaultRecord],
    home: &str,
    answered_by: impl Fn(&Sample) -> bool,
) -> Option<f64> {
    let ready = faults
        .iter()
        .filter(|f| f.region == home && f.action == "restart" && f.error.is_none())
        .map(|f| f.done_secs)
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))))?;
    calls
        .iter()
        .filter(|s| s.start >= ready && s.error.is_none() && answered_by(s))
        .map(|s| s.end() - ready)
        .min_by(f64::total_cmp)
}

fn custom_speech(
    samples: &[Sample],
    faults: &[FaultRecord],
    home: &str,
    pair: Option<&str>,
) -> CustomSpeech {
    let calls: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.kind == Kind::SttCustom)
        .collect();
    let mut served_by = BTreeMap::new();
    for s in &calls {
        if let (None, Some(r)) = (&s.error, &s.region) {
            *served_by.entry(r.clone()).or_insert(0) += 1;
        }
    }
    let out = outages(faults, home);
    CustomSpeech {
        home: home.to_owned(),
        secondary: pair.map(str::to_owned),
        calls: stats(calls.iter().copied()),
        served_by,
        failover_secs: time_to_answer(&calls, &out, |s| {
            pair.is_some() && s.region.as_deref() == pair
        }),
        failback_secs: time_to_failback(&calls, faults, home, |s| {
            s.region.as_deref() == Some(home)
        }),
    }
}

fn custom_voice(samples: &[Sample], faults: &[FaultRecord], home: &str) -> CustomVoice {
    let calls: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.kind == Kind::TtsCustom)
        .collect();
    let mut by_link = BTreeMap::new();
    let mut spans: Vec<LinkSpan> = Vec::new();
    for s in &calls {
        let (None, Some(link), Some(region)) = (&s.error, &s.link, &s.region) else {
            continue;
        };
        *by_link.entry(format!("{link} {region}")).or_insert(0) += 1;
        match spans.last_mut() {
            Some(l) if &l.link == link && &l.region == region => {
                l.to_secs = s.start;
                l.calls += 1;
            }
            _ => spans.push(LinkSpan {
                link: link.clone(),
                region: region.clone(),
                from_secs: s.start,
                to_secs: s.start,
                calls: 1,
            }),
        }
    }
    let primary_link =
        |s: &Sample| s.link.as_deref() == Some("custom") && s.region.as_deref() == Some(home);
    let out = outages(faults, home);
    CustomVoice {
        home: home.to_owned(),
        calls: stats(calls.iter().copied()),
        by_link,
        spans,
        failover_secs: time_to_answer(&calls, &out, |s| s.link.is_some() && !primary_link(s)),
        failback_secs: time_to_failback(&calls, faults, home, primary_link),
    }
}

fn failover(samples: &[Sample], faults: &[FaultRecord], primary: &str) -> Failover {
    let default: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.kind.is_default_endpoint())
        .collect();
    let failed_calls = default.iter().filter(|s| s.error.is_some()).count() as u64;
    let first = faults.iter().find(|f| f.disruptive).map(|f| f.at_secs);
    let Some(first) = first else {
        let all = stats(default.iter().copied());
        return Failover {
            baseline: all,
            during: Stats::default(),
            window_secs: None,
            failed_calls,
            added_p50_ms: None,
            added_p99_ms: None,
            failback_secs: None,
        };
    };
    let last_done = faults.iter().map(|f| f.done_secs).fold(first, f64::max);
    // The primary is back for default calls with its first answer after the last fault.
    let back = default
        .iter()
        .filter(|s| s.start >= last_done && s.region.as_deref() == Some(primary))
        .min_by(|a, b| a.end().total_cmp(&b.end()));
    let end = back.map_or(f64::INFINITY, |s| s.start);
    let baseline = stats(default.iter().copied().filter(|s| s.start < first));
    let during = stats(
        default
            .iter()
            .copied()
            .filter(|s| s.start >= first && s.start < end),
    );
    let last_end = default.iter().map(|s| s.end()).fold(first, f64::max);
    Failover {
        added_p50_ms: diff(during.p50_ms, baseline.p50_ms),
        added_p99_ms: diff(during.p99_ms, baseline.p99_ms),
        baseline,
        during,
        window_secs: Some([first, end.min(last_end)]),
        failed_calls,
        failback_secs: back.map(|b| b.end() - last_done),
    }
}

/// Enrollments acknowledged, found in each region, and lost: `(found per region, lost)`.
pub fn enrollments_lost(
    acknowledged: u64,
    readback: &Readback,
) -> (BTreeMap<String, Option<u64>>, Option<u64>) {
    let found: BTreeMap<String, Option<u64>> = readback
        .count
        .iter()
        .map(|(r, c)| (r.clone(), c.map(|c| c.saturating_sub(readback.setup))))
        .collect();
    let lost = found
        .values()
        .flatten()
        .map(|&f| acknowledged.saturating_sub(f))
        .max();
    (found, lost)
}

fn speaker(
    samples: &[Sample],
    faults: &[FaultRecord],
    home: &str,
    pair: Option<&str>,
    readback: Option<&Readback>,
) -> Speaker {
    let sp: Vec<&Sample> = samples.iter().filter(|s| s.kind.is_speaker()).collect();
    let enrolls = sp.iter().filter(|s| s.kind == Kind::SpeakerEnroll);
    let enrollments_acknowledged = enrolls.clone().filter(|s| s.error.is_none()).count() as u64;
    let enrollments_unacknowledged = enrolls.filter(|s| s.error.is_some()).count() as u64;
    let (enrollments_found, enrollments_lost) = match readback {
        Some(rb) => enrollments_lost(enrollments_acknowledged, rb),
        None => (BTreeMap::new(), None),
    };
    let failed_calls = sp.iter().filter(|s| s.error.is_some()).count() as u64;
    let failover_secs = time_to_answer(&sp, &outages(faults, home), |s| {
        pair.is_some() && s.region.as_deref() == pair
    });
    let failback_secs = time_to_failback(&sp, faults, home, |s| s.region.as_deref() == Some(home));
    Speaker {
        home: home.to_owned(),
        failed_calls,
        failover_secs,
        failback_secs,
        enrollments_acknowledged,
        enrollments_unacknowledged,
        enrollments_found,
        enrollments_converged: readback.and_then(|r| r.converged),
        replication_lag: readback
            .map(|r| r.replication_lag.clone())
            .unwrap_or_default(),
        enrollments_lost,
    }
}

fn check(
    g: &Goals,
    totals: &Stats,
    f: &Failover,
    sp: Option<&Speaker>,
    faults: &[FaultRecord],
) -> Vec<GoalCheck> {
    let mut out = Vec::new();
    let mut at_most = |name: &str, goal: Option<f64>, measured: Option<f64>| {
        if let Some(goal) = goal {
            out.push(GoalCheck {
                name: name.into(),
                goal,
                measured,
                passed: measured.is_some_and(|m| m <= goal),
            });
        }
    };
    at_most(
        "max_failed_calls",
        g.max_failed_calls.map(|x| x as f64),
        Some(f.failed_calls as f64),
    );
    // A failover without a slower call adds nothing; none measured at all is a miss.
    at_most("max_added_p99_ms", g.max_added_p99_ms, f.added_p99_ms);
    at_most(
        "max_speaker_failover_secs",
        g.max_speaker_failover_secs,
        sp.and_then(|s| s.failover_secs),
    );
    at_most(
        "max_speaker_failback_secs",
        g.max_speaker_failback_secs,
        sp.and_then(|s| s.failback_secs),
    );
    let disruptive: Vec<&FaultRecord> = faults.iter().filter(|x| x.disruptive).collect();
    let oldest = if disruptive.iter().all(|x| x.backup_age_secs.is_some()) {
        disruptive
            .iter()
            .filter_map(|x| x.backup_age_secs)
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))))
    } else {
        None
    };
    at_most("max_backup_age_secs", g.max_backup_age_secs, oldest);
    at_most(
        "max_enrollments_lost",
        g.max_enrollments_lost.map(|x| x as f64),
        sp.and_then(|s| s.enrollments_lost).map(|x| x as f64),
    );
    if let Some(goal) = g.min_success_ratio {
        let measured = (totals.calls > 0).then(|| totals.ok as f64 / totals.calls as f64);
        out.push(GoalCheck {
            name: "min_success_ratio".into(),
            goal,
            measured,
            passed: measured.is_some_and(|m| m >= goal),
        });
    }
    out
}

fn ms(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.0} ms"))
}

fn secs(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.1} s"))
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self, chart: Option<&str>) -> String {
        let mut m = String::new();
        let verdict = if self.passed { "PASSED" } else { "FAILED" };
        m.push_str(&format!(
            "# Drill `{}`: {verdict}\n\n{} s of load, {} calls, {} ok, {} failed, {} skipped (no free slot).\n\n",
            self.scenario, self.duration_secs, self.totals.calls, self.totals.ok, self.totals.failed, self.skipped
        ));
        if let Some(c) = chart {
            m.push_str(&format!("![success and latency over time]({c})\n\n"));
        }
        m.push_str("## Goals\n\n| goal | bound | measured | |\n|---|---|---|---|\n");
        for g in &self.goals {
            m.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                g.name,
                g.goal,
                g.measured
                    .map_or("not measured".into(), |v| format!("{v:.3}")),
                if g.passed { "✅" } else { "❌ missed" }
            ));
        }
        m.push_str("\n## Faults\n\n| at | done | region | action | newest backup's age |\n|---|---|---|---|---|\n");
        for f in &self.faults {
            m.push_str(&format!(
                "| {:.1} s | {:.1} s | {} | {}{} | {} |\n",
                f.at_secs,
                f.done_secs,
                f.region,
                f.action,
                f.error
                    .as_ref()
                    .map_or(String::new(), |e| format!(" (failed: {e})")),
                secs(f.backup_age_secs)
            ));
        }
        let f = &self.failover;
        m.push_str(&format!(
            "\n## Default endpoints (STT, TTS)\n\n- failed calls: {}\n- failover window: {}\n\
             - p50 / p99 before the first fault: {} / {}\n- p50 / p99 during failover: {} / {}\n\
             - added latency during failover: p50 {}, p99 {}\n- back on the primary: {} after the last fault\n",
            f.failed_calls,
            f.window_secs.map_or("–".into(), |[a, b]| format!("{a:.1} s → {b:.1} s")),
            ms(f.baseline.p50_ms),
            ms(f.baseline.p99_ms),
            ms(f.during.p50_ms),
            ms(f.during.p99_ms),
            ms(f.added_p50_ms),
            ms(f.added_p99_ms),
            secs(f.failback_secs),
        ));
        if let Some(s) = &self.speaker {
            m.push_str(&format!(
                "\n## Speaker recognition (profile in {})\n\n- failed calls: {}\n\
                 - failover to the pair: {} after the fault\n- failback: {} after the region was ready again\n",
                s.home,
                s.failed_calls,
                secs(s.failover_secs),
                secs(s.failback_secs)
            ));
            for (region, l) in &s.replication_lag {
                m.push_str(&format!(
                    "- replication into {region}: {} changes applied, mean lag {}, p99 at most {}{}\n",
                    l.changes,
                    l.mean_secs.map_or("–".into(), |v| format!("{:.0} ms", v * 1000.0)),
                    l.p99_at_most_secs
                        .map_or("–".into(), |v| format!("{:.0} ms", v * 1000.0)),
                    if l.restarted { " (since its restart)" } else { "" },
                ));
            }
            if s.enrollments_acknowledged + s.enrollments_unacknowledged > 0 {
                let found: Vec<String> = s
                    .enrollments_found
                    .iter()
                    .map(|(r, n)| {
                        format!("{r} {}", n.map_or("unreadable".into(), |n| n.to_string()))
                    })
                    .collect();
                m.push_str(&format!(
                    "- enrollments: {} acknowledged, {} failed; found at the end: {}{}; lost: {}\n",
                    s.enrollments_acknowledged,
                    s.enrollments_unacknowledged,
                    if found.is_empty() {
                        "–".into()
                    } else {
                        found.join(", ")
                    },
                    match s.enrollments_converged {
                        Some(false) => " (the pair had not converged)",
                        None => " (not read back: no admin token to check convergence)",
                        Some(true) => "",
                    },
                    s.enrollments_lost
                        .map_or("not measured".into(), |n| n.to_string()),
                ));
            }
        }
        if let Some(c) = &self.custom_speech {
            let served: Vec<String> = c
                .served_by
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            m.push_str(&format!(
                "\n## Custom speech (model trained in {}, copied to {})\n\n- calls: {}, failed: {}\n\
                 - answered by: {}\n- time to serve from the secondary: {} after the fault\n\
                 - back on the home region: {} after it was ready again\n",
                c.home,
                c.secondary.as_deref().unwrap_or("–"),
                c.calls.calls,
                c.calls.failed,
                if served.is_empty() { "–".into() } else { served.join(", ") },
                secs(c.failover_secs),
                secs(c.failback_secs),
            ));
        }
        if let Some(c) = &self.custom_voice {
            m.push_str(&format!(
                "\n## Custom voice (first link: {})\n\n- calls: {}, failed: {}\n\
                 - another link answered {} after the fault; the home region's voice again {} after it was ready\n\n\
                 | link | region | from | to | calls |\n|---|---|---|---|---|\n",
                c.home,
                c.calls.calls,
                c.calls.failed,
                secs(c.failover_secs),
                secs(c.failback_secs),
            ));
            for l in &c.spans {
                m.push_str(&format!(
                    "| {} | {} | {:.1} s | {:.1} s | {} |\n",
                    l.link, l.region, l.from_secs, l.to_secs, l.calls
                ));
            }
        }
        if !self.by_path.is_empty() {
            m.push_str("\n## SDK and gateway\n\n| path | calls | ok | failed | p50 | p99 |\n|---|---|---|---|---|---|\n");
            for (p, s) in &self.by_path {
                m.push_str(&format!(
                    "| {p} | {} | {} | {} | {} | {} |\n",
                    s.calls,
                    s.ok,
                    s.failed,
                    ms(s.p50_ms),
                    ms(s.p99_ms)
                ));
            }
        }
        m.push_str("\n## Calls by kind\n\n| kind | calls | ok | failed | p50 | p99 |\n|---|---|---|---|---|---|\n");
        for (k, s) in &self.by_kind {
            m.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                k.name(),
                s.calls,
                s.ok,
                s.failed,
                ms(s.p50_ms),
                ms(s.p99_ms)
            ));
        }
        m.push_str("\n## Client-visible errors\n\n");
        if self.errors.is_empty() {
            m.push_str("None.\n");
        }
        for (e, n) in &self.errors {
            let example = self
                .error_examples
                .get(e)
                .map_or(String::new(), |x| format!(", e.g. {x}"));
            m.push_str(&format!("- `{e}`: {n}{example}\n"));
        }
        m.push_str("\n## Timeline\n\n| s | ok | failed | p50 | p99 |\n|---|---|---|---|---|\n");
        for s in &self.timeline {
            m.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                s.t,
                s.ok,
                s.failed,
                ms(s.p50_ms),
                ms(s.p99_ms)
            ));
        }
        m
    }
}
