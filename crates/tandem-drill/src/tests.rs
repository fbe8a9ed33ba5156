//! Unit tests: the scenario format, the load mix, and the report's arithmetic on made-up calls.

use crate::load::{kind_of, Kind, Sample};
use crate::report::{build, percentile, FaultRecord};
use crate::scenario::{Action, Scenario};

const SCENARIO: &str = r#"
name = "t"
duration_secs = 10
[[regions]]
name = "westus"
pair = "eastus"
[[regions]]
name = "eastus"
pair = "westus"
[load]
rate = 2.0
concurrency = 2
stt = 2
tts = 1
speaker_verify = 1
[[faults]]
at_secs = 5
region = "westus"
action = "restart"
[[faults]]
at_secs = 2
region = "westus"
action = "kill"
[[faults]]
at_secs = 3
region = "eastus"
action = "status"
status = 503
[goals]
max_failed_calls = 1
max_added_p99_ms = 500
max_speaker_failover_secs = 2
max_speaker_failback_secs = 2
max_backup_age_secs = 30
min_success_ratio = 0.5
[policy]
failback_after_ms = 1000
"#;

#[test]
fn a_scenario_parses_and_its_timeline_is_in_time_order() {
    let s = Scenario::from_toml(SCENARIO).unwrap();
    assert_eq!(s.regions[0].backup_interval_secs, 10);
    assert_eq!(s.policy.failback_after_ms, 1000);
    let t: Vec<(f64, Action)> = s
        .timeline()
        .into_iter()
        .map(|f| (f.at_secs, f.action))
        .collect();
    assert_eq!(
        t,
        [
            (2.0, Action::Kill),
            (3.0, Action::Status { status: 503 }),
            (5.0, Action::Restart)
        ]
    );
}

#[test]
fn bad_scenarios_are_refused_with_the_reason() {
    let cases = [
        (
            SCENARIO.replace("pair = \"eastus\"", "pair = \"nowhere\""),
            "pair nowhere",
        ),
        (
            SCENARIO.replace("at_secs = 5", "at_secs = 50"),
            "outside the run",
        ),
        (
            SCENARIO.replace("action = \"kill\"", "action = \"explode\""),
            "explode",
        ),
        (SCENARIO.replace("rate = 2.0", "rate = 0.0"), "rate"),
        (
            SCENARIO.replace("max_failed_calls", "max_failed_callz"),
            "max_failed_callz",
        ),
    ];
    for (text, why) in cases {
        let e = Scenario::from_toml(&text).unwrap_err().to_string();
        assert!(e.contains(why), "{why}: {e}");
    }
}

#[test]
fn the_mix_is_exactly_the_weights() {
    let s = Scenario::from_toml(SCENARIO).unwrap();
    let kinds: Vec<Kind> = (0..8).map(|n| kind_of(n, &s.load)).collect();
    use Kind::*;
    assert_eq!(
        kinds,
        [Stt, Stt, Tts, SpeakerVerify, Stt, Stt, Tts, SpeakerVerify]
    );
}

#[test]
fn nearest_rank_percentiles() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&v, 50.0), Some(50.0));
    assert_eq!(percentile(&v, 99.0), Some(99.0));
    assert_eq!(percentile(&v, 100.0), Some(100.0));
    assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
    assert_eq!(percentile(&[], 50.0), None);
}

fn call(start: f64, ms: f64, kind: Kind, region: Option<&str>) -> Sample {
    Sample {
        start,
        latency_ms: ms,
        kind,
        region: region.map(str::to_owned),
        error: region.is_none().then(|| "all_regions_failed".to_owned()),
        message: region.is_none().then(|| "all regions failed".to_owned()),
    }
}

fn fault(at: f64, done: f64, region: &str, action: &str, age: Option<f64>) -> FaultRecord {
    FaultRecord {
        at_secs: at,
        done_secs: done,
        region: region.into(),
        action: action.into(),
        disruptive: action != "restart",
        backup_age_secs: age,
        error: None,
    }
}

#[test]
fn the_report_measures_failover_failback_and_checks_each_goal() {
    let s = Scenario::from_toml(SCENARIO).unwrap();
    let w = Some("westus");
    let e = Some("eastus");
    let samples = vec![
        call(0.1, 100.0, Kind::Stt, w),
        call(0.6, 100.0, Kind::Stt, w),
        call(1.1, 120.0, Kind::SpeakerVerify, w),
        // kill at 2.0
        call(2.1, 900.0, Kind::Stt, None),
        call(2.5, 400.0, Kind::Stt, e),
        call(3.0, 300.0, Kind::SpeakerVerify, e), // ends 3.3: failover 1.3 s
        call(4.0, 300.0, Kind::Tts, e),
        // restart at 5.0, ready at 6.0
        call(6.5, 100.0, Kind::SpeakerVerify, e),
        call(7.0, 100.0, Kind::Stt, w), // ends 7.1: default failback 1.1 s
        call(8.0, 500.0, Kind::SpeakerVerify, w), // ends 8.5: speaker failback 2.5 s
    ];
    let faults = vec![
        fault(2.0, 2.0, "westus", "kill -9", Some(12.0)),
        fault(5.0, 6.0, "westus", "restart", None),
    ];
    let r = build(&s, "t", &samples, 3, &faults);
    assert_eq!((r.totals.calls, r.totals.ok, r.totals.failed), (10, 9, 1));
    assert_eq!(r.skipped, 3);
    assert_eq!(r.errors.get("all_regions_failed"), Some(&1));
    assert_eq!(r.timeline.len(), 10);
    assert_eq!((r.timeline[2].ok, r.timeline[2].failed), (1, 1));
    assert_eq!(r.timeline[2].p99_ms, Some(900.0));
    assert_eq!(r.timeline[5].p50_ms, None);

    let f = &r.failover;
    assert_eq!(f.failed_calls, 1);
    assert_eq!(f.baseline.p99_ms, Some(100.0));
    // During: 2.1 (900), 2.5 (400), 4.0 (300); 7.0 is the primary back.
    assert_eq!(f.during.calls, 3);
    assert_eq!(f.added_p99_ms, Some(800.0));
    let back = f.failback_secs.unwrap();
    assert!((back - 1.1).abs() < 1e-9, "{back}");

    let sp = r.speaker.as_ref().unwrap();
    assert!((sp.failover_secs.unwrap() - 1.3).abs() < 1e-9);
    assert!((sp.failback_secs.unwrap() - 2.5).abs() < 1e-9);

    let verdict: Vec<(&str, bool)> = r
        .goals
        .iter()
        .map(|g| (g.name.as_str(), g.passed))
        .collect();
    assert_eq!(
        verdict,
        [
            ("max_failed_calls", true),
            ("max_added_p99_ms", false),
            ("max_speaker_failover_secs", true),
            ("max_speaker_failback_secs", false),
            ("max_backup_age_secs", true),
            ("min_success_ratio", true),
        ]
    );
    assert!(!r.passed);
    let md = r.markdown(Some("chart.svg"));
    assert!(md.contains("FAILED") && md.contains("❌ missed") && md.contains("chart.svg"));
}

#[test]
fn a_goal_that_cannot_be_measured_is_missed() {
    let s = Scenario::from_toml(SCENARIO).unwrap();
    let samples = vec![call(0.1, 100.0, Kind::Stt, Some("westus"))];
    // No backup yet at the fault, no speaker call, no restart.
    let faults = vec![fault(2.0, 2.0, "westus", "kill -9", None)];
    let r = build(&s, "t", &samples, 0, &faults);
    let backup = r
        .goals
        .iter()
        .find(|g| g.name == "max_backup_age_secs")
        .unwrap();
    assert_eq!((backup.measured, backup.passed), (None, false));
    assert!(r.speaker.is_none());
    assert!(!r.passed);
}

#[test]
fn the_chart_is_an_svg_with_the_faults_marked() {
    let s = Scenario::from_toml(SCENARIO).unwrap();
    let samples = vec![
        call(0.1, 100.0, Kind::Stt, Some("westus")),
        call(2.1, 900.0, Kind::Stt, None),
    ];
    let faults = vec![fault(2.0, 2.0, "westus", "kill -9", Some(1.0))];
    let r = build(&s, "t", &samples, 0, &faults);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.svg");
    crate::chart::write_svg(&r, &path).unwrap();
    let svg = std::fs::read_to_string(path).unwrap();
    assert!(
        svg.starts_with("<svg") || svg.contains("<svg"),
        "{}",
        &svg[..100]
    );
    assert!(svg.contains("kill -9 westus"));
}

#[test]
fn speaker_failover_is_timed_from_the_fault_that_moved_the_calls() {
    let s = Scenario::from_toml(SCENARIO).unwrap();
    let samples = vec![
        call(1.0, 100.0, Kind::SpeakerVerify, Some("westus")),
        call(3.0, 900.0, Kind::SpeakerVerify, Some("westus")), // slow, still the primary
        call(6.0, 500.0, Kind::SpeakerVerify, Some("eastus")), // ends 6.5
    ];
    let faults = vec![
        fault(2.0, 2.0, "westus", "delay 800 ms", Some(1.0)),
        fault(5.0, 5.0, "westus", "blackhole", Some(1.0)),
    ];
    let r = build(&s, "t", &samples, 0, &faults);
    let f = r.speaker.unwrap().failover_secs.unwrap();
    assert!((f - 1.5).abs() < 1e-9, "{f}");
}
