//! Unit tests: the scenario format, the load mix, and the report's arithmetic on made-up calls.

use crate::load::{kind_of, Kind, Sample};
use crate::report::{build, enrollments_lost, percentile, FaultRecord, Readback, Report};
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
        link: None,
        gateway: false,
    }
}

/// Each goal's name and whether it held.
fn verdict(r: &Report) -> Vec<(&str, bool)> {
    r.goals
        .iter()
        .map(|g| (g.name.as_str(), g.passed))
        .collect()
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
    let r = build(&s, "t", &samples, 3, &faults, None);
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

    let verdict = verdict(&r);
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
    let r = build(&s, "t", &samples, 0, &faults, None);
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
    let r = build(&s, "t", &samples, 0, &faults, None);
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
    let r = build(&s, "t", &samples, 0, &faults, None);
    let f = r.speaker.unwrap().failover_secs.unwrap();
    assert!((f - 1.5).abs() < 1e-9, "{f}");
}

fn readback(setup: u64, counts: &[(&str, Option<u64>)], converged: bool) -> Readback {
    Readback {
        setup,
        count: counts.iter().map(|(r, c)| (r.to_string(), *c)).collect(),
        converged: Some(converged),
        replication_lag: Default::default(),
    }
}

#[test]
fn enrollments_lost_are_the_acknowledged_ones_missing_from_the_poorest_region() {
    let rb = readback(2, &[("westus", Some(7)), ("eastus", Some(5))], true);
    let (found, lost) = enrollments_lost(5, &rb);
    assert_eq!(found["westus"], Some(5));
    assert_eq!(found["eastus"], Some(3));
    assert_eq!(lost, Some(2));
    // Unacknowledged enrollments kept by the region: more found than acknowledged, none lost.
    assert_eq!(enrollments_lost(3, &rb).1, Some(0));
    // A region that could not be read does not count; none readable: not measured.
    let rb = readback(2, &[("westus", Some(7)), ("eastus", None)], false);
    assert_eq!(enrollments_lost(5, &rb).1, Some(0));
    let rb = readback(2, &[("eastus", None)], false);
    assert_eq!(enrollments_lost(5, &rb).1, None);
    // Fewer than the setup's (should not happen): saturates, everything acknowledged is lost.
    let rb = readback(2, &[("westus", Some(1))], true);
    assert_eq!(
        enrollments_lost(3, &rb),
        ([("westus".into(), Some(0))].into(), Some(3))
    );
}

#[test]
fn the_enrollments_goal_is_checked_and_reported() {
    let mut s = Scenario::from_toml(SCENARIO).unwrap();
    s.goals = Default::default();
    s.goals.max_enrollments_lost = Some(0);
    let w = Some("westus");
    let samples = vec![
        call(0.5, 100.0, Kind::SpeakerEnroll, w),
        call(1.0, 100.0, Kind::SpeakerEnroll, w),
        call(1.5, 100.0, Kind::SpeakerEnroll, None),
        call(2.0, 100.0, Kind::SpeakerVerify, w),
    ];
    let faults = vec![FaultRecord {
        at_secs: 1.2,
        done_secs: 1.2,
        region: "westus".into(),
        action: "partition".into(),
        disruptive: false,
        backup_age_secs: None,
        error: None,
    }];
    let ok = readback(2, &[("westus", Some(4)), ("eastus", Some(4))], true);
    let r = build(&s, "t", &samples, 0, &faults, Some(&ok));
    let sp = r.speaker.as_ref().unwrap();
    assert_eq!(sp.enrollments_acknowledged, 2);
    assert_eq!(sp.enrollments_unacknowledged, 1);
    assert_eq!(sp.enrollments_lost, Some(0));
    assert_eq!(sp.enrollments_converged, Some(true));
    assert_eq!(r.goals.len(), 1);
    assert!(r.passed, "{:?}", r.goals);
    assert!(r
        .markdown(None)
        .contains("enrollments: 2 acknowledged, 1 failed"));
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["speaker"]["enrollments_lost"], 0);

    let short = readback(2, &[("westus", Some(4)), ("eastus", Some(3))], true);
    let r = build(&s, "t", &samples, 0, &faults, Some(&short));
    assert_eq!(r.speaker.as_ref().unwrap().enrollments_lost, Some(1));
    assert!(!r.passed);
    assert_eq!(r.goals[0].measured, Some(1.0));

    // No read-back at all (e.g. every region down at the end): not measured, a miss.
    let r = build(&s, "t", &samples, 0, &faults, None);
    assert_eq!(r.goals[0].measured, None);
    assert!(!r.passed);
}

#[test]
fn partition_needs_a_pair_and_parses_both_ways() {
    let with = |extra: &str| {
        SCENARIO.replace(
            "[goals]",
            &format!("[[faults]]\nat_secs = 4\nregion = \"westus\"\n{extra}\n[goals]"),
        )
    };
    let s = Scenario::from_toml(&with("action = \"partition\"")).unwrap();
    assert!(s.faults.iter().any(|f| f.action == Action::Partition));
    assert!(!Action::Partition.is_disruptive());
    let s = Scenario::from_toml(&with("action = \"heal_partition\"")).unwrap();
    assert!(s.faults.iter().any(|f| f.action == Action::HealPartition));
    let lonely = r#"
duration_secs = 10
[[regions]]
name = "westus"
[[regions]]
name = "eastus"
[[faults]]
at_secs = 1
region = "westus"
action = "partition"
"#;
    let e = Scenario::from_toml(lonely).unwrap_err().to_string();
    assert!(e.contains("no pair"), "{e}");
    let enroll_without_pair = "duration_secs = 10\n[[regions]]\nname = \"westus\"\n\
                               [load]\nstt = 0\nspeaker_enroll = 1\n";
    assert!(Scenario::from_toml(enroll_without_pair).is_err());
}

#[test]
fn the_mix_includes_enrollments_last() {
    let mut s = Scenario::from_toml(SCENARIO).unwrap();
    s.load.speaker_enroll = 1;
    let kinds: Vec<Kind> = (0..5).map(|n| kind_of(n, &s.load)).collect();
    assert_eq!(
        kinds,
        [
            Kind::Stt,
            Kind::Stt,
            Kind::Tts,
            Kind::SpeakerVerify,
            Kind::SpeakerEnroll
        ]
    );
}

#[test]
fn the_chart_is_also_a_png_with_text_and_lines() {
    if let Err(e) = crate::chart::load_font(None, crate::chart::FONT_PATHS) {
        eprintln!("skipped: {e}");
        return;
    }
    let s = Scenario::from_toml(SCENARIO).unwrap();
    let samples = vec![
        call(0.1, 100.0, Kind::Stt, Some("westus")),
        call(2.1, 900.0, Kind::Stt, None),
    ];
    let faults = vec![fault(2.0, 2.0, "westus", "kill -9", Some(1.0))];
    let r = build(&s, "t", &samples, 0, &faults, None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.png");
    crate::chart::write_png(&r, &path).unwrap();

    let decoder = png::Decoder::new(std::fs::File::open(&path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1000, 640));
    assert_eq!(info.color_type, png::ColorType::Rgb);
    let px = |x: usize, y: usize| {
        let i = (y * 1000 + x) * 3;
        (buf[i], buf[i + 1], buf[i + 2])
    };
    let all: Vec<_> = (0..640)
        .flat_map(|y| (0..1000).map(move |x| (x, y)))
        .collect();
    let count =
        |pred: &dyn Fn((u8, u8, u8)) -> bool| all.iter().filter(|&&(x, y)| pred(px(x, y))).count();
    assert_eq!(px(0, 0), (255, 255, 255), "white background");
    // Text and axes: dark grey pixels; the fault: magenta; the calls: green.
    assert!(
        count(&|(r, g, b)| r < 80 && g < 80 && b < 80) > 2000,
        "no text or axes"
    );
    assert!(
        count(&|(r, g, b)| r > 200 && g < 60 && b > 200) > 100,
        "no fault line"
    );
    assert!(
        count(&|(r, g, b)| r < 60 && g > 200 && b < 60) > 100,
        "no ok line"
    );
    // The caption's text is rasterised: the top 30 rows have dark pixels (not only lines).
    let caption = (0..30)
        .flat_map(|y| (0..1000).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let (r, g, b) = px(x, y);
            r < 100 && g < 100 && b < 100
        })
        .count();
    assert!(caption > 100, "no caption text: {caption}");
}

#[test]
fn a_missing_chart_font_says_what_to_install() {
    let err = crate::chart::load_font(None, &["/nonexistent/DejaVuSans.ttf"])
        .err()
        .unwrap();
    assert!(matches!(err, crate::DrillError::ChartFont(_)), "{err}");
    assert!(err.to_string().contains("fonts-dejavu-core"), "{err}");
    let err = crate::chart::load_font(Some(std::path::Path::new("/nonexistent.ttf")), &[])
        .err()
        .unwrap();
    assert!(err.to_string().contains("/nonexistent.ttf"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let not_a_font = dir.path().join("x.ttf");
    std::fs::write(&not_a_font, b"hello").unwrap();
    let err = crate::chart::load_font(Some(&not_a_font), &[])
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a TrueType font"), "{err}");
}

const CUSTOM: &str = r#"
duration_secs = 10
[[regions]]
name = "westus"
pair = "eastus"
[[regions]]
name = "eastus"
pair = "westus"
[load]
stt = 1
stt_custom = 2
tts_custom = 1
gateway_share = 0.5
[goals]
max_custom_speech_failover_secs = 1
max_custom_voice_failover_secs = 1
max_failed_custom_calls = 0
"#;

fn voice(start: f64, ms: f64, link: Option<&str>, region: &str) -> Sample {
    let mut s = call(start, ms, Kind::TtsCustom, link.map(|_| region));
    s.link = link.map(str::to_owned);
    s
}

#[test]
fn custom_kinds_take_their_weights_and_need_a_pair() {
    let s = Scenario::from_toml(CUSTOM).unwrap();
    let kinds: Vec<Kind> = (0..8).map(|n| kind_of(n, &s.load)).collect();
    use Kind::*;
    assert_eq!(
        kinds,
        [Stt, SttCustom, SttCustom, TtsCustom, Stt, SttCustom, SttCustom, TtsCustom]
    );
    // A gateway that knows the cids serves the custom model: default STT stays on the SDK.
    assert!(SttCustom.via_gateway(true) && !Stt.via_gateway(true));
    assert!(!SttCustom.via_gateway(false) && Stt.via_gateway(false));
    assert!(TtsCustom.via_gateway(true) && !SpeakerEnroll.via_gateway(true));
    let unpaired = CUSTOM.replace("pair = \"eastus\"\n", "");
    let e = Scenario::from_toml(&unpaired).unwrap_err().to_string();
    assert!(e.contains("need the first region to have a pair"), "{e}");
    let e = Scenario::from_toml(&CUSTOM.replace("0.5", "1.5"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("gateway_share"), "{e}");
}

#[test]
fn the_gateway_share_is_spread_evenly() {
    use crate::load::through_gateway;
    let pick = |share: f64| -> Vec<bool> { (0..6).map(|n| through_gateway(n, share)).collect() };
    assert_eq!(pick(0.0), [false; 6]);
    assert_eq!(pick(1.0), [true; 6]);
    assert_eq!(pick(0.5), [false, true, false, true, false, true]);
    let third = pick(1.0 / 3.0).iter().filter(|&&g| g).count();
    assert_eq!(third, 2);
}

#[test]
fn custom_speech_and_voice_are_timed_from_the_outage_and_their_links_listed() {
    let s = Scenario::from_toml(CUSTOM).unwrap();
    let (w, e) = (Some("westus"), Some("eastus"));
    let mut samples = vec![
        call(0.5, 500.0, Kind::SttCustom, w),
        voice(1.0, 100.0, Some("custom"), "westus"),
        // kill at 2.0; a delay at 1.5 came first and must not count as the outage's start
        call(2.2, 900.0, Kind::SttCustom, None),
        call(2.5, 700.0, Kind::SttCustom, e), // ends 3.2: 1.2 s after the kill
        voice(2.6, 300.0, Some("custom-secondary"), "eastus"), // ends 2.9: 0.9 s
        voice(3.0, 100.0, Some("custom-secondary"), "eastus"),
        voice(4.0, 100.0, Some("public"), "eastus"),
        // restart at 5, ready at 6
        voice(6.5, 500.0, Some("custom"), "westus"), // ends 7.0: failback 1.0 s
        call(7.0, 600.0, Kind::SttCustom, w),        // ends 7.6: failback 1.6 s
        voice(8.0, 100.0, None, "westus"),           // failed
    ];
    samples[4].gateway = true;
    let faults = vec![
        FaultRecord {
            disruptive: true,
            ..fault(1.5, 1.5, "westus", "delay 800 ms", None)
        },
        fault(2.0, 2.0, "westus", "kill -9", None),
        fault(5.0, 6.0, "westus", "restart", None),
    ];
    let r = build(&s, "t", &samples, 0, &faults, None);

    let c = r.custom_speech.as_ref().unwrap();
    assert_eq!(c.secondary.as_deref(), Some("eastus"));
    assert_eq!((c.calls.calls, c.calls.failed), (4, 1));
    assert_eq!(c.served_by.get("eastus"), Some(&1));
    assert!((c.failover_secs.unwrap() - 1.2).abs() < 1e-9, "{c:?}");
    assert!((c.failback_secs.unwrap() - 1.6).abs() < 1e-9, "{c:?}");

    let v = r.custom_voice.as_ref().unwrap();
    let spans: Vec<(&str, &str, u64)> = v
        .spans
        .iter()
        .map(|l| (l.link.as_str(), l.region.as_str(), l.calls))
        .collect();
    assert_eq!(
        spans,
        [
            ("custom", "westus", 1),
            ("custom-secondary", "eastus", 2),
            ("public", "eastus", 1),
            ("custom", "westus", 1),
        ]
    );
    assert_eq!(v.by_link.get("custom-secondary eastus"), Some(&2));
    assert!((v.failover_secs.unwrap() - 0.9).abs() < 1e-9, "{v:?}");
    assert!((v.failback_secs.unwrap() - 1.0).abs() < 1e-9, "{v:?}");

    assert_eq!(r.by_path["gateway"].calls, 1);
    assert_eq!(r.by_path["sdk"].calls, 9);
    let verdict = verdict(&r);
    assert_eq!(
        verdict,
        [
            ("max_custom_speech_failover_secs", false),
            ("max_custom_voice_failover_secs", true),
            ("max_failed_custom_calls", false),
        ]
    );
    let md = r.markdown(None);
    assert!(md.contains("## Custom speech (model trained in westus, copied to eastus)"));
    assert!(
        md.contains("| custom-secondary | eastus | 2.6 s | 3.0 s | 2 |"),
        "{md}"
    );
    assert!(md.contains("| gateway | 1 | 1 | 0 |"), "{md}");
}

const METRICS: &str = "# HELP tandem_replication_lag_seconds time from a change's commit at the pair to its apply here
# TYPE tandem_replication_lag_seconds histogram
tandem_replication_lag_seconds_bucket{le=\"0.01\"} 2
tandem_replication_lag_seconds_bucket{le=\"0.1\"} 8
tandem_replication_lag_seconds_bucket{le=\"1\"} 10
tandem_replication_lag_seconds_bucket{le=\"+Inf\"} 10
tandem_replication_lag_seconds_sum 1.5
tandem_replication_lag_seconds_count 10
tandem_replication_applied_total 10
";

#[test]
fn replication_lag_is_the_histograms_difference_over_the_run() {
    use crate::lag::{parse, LagSeen};
    let end = parse(METRICS).unwrap();
    assert_eq!(end.count, 10);
    assert_eq!(end.buckets.len(), 4);
    assert!(parse("tandem_other 1\n").is_none());
    // Before the run: 2 fast changes. During it: 8, of which 2 took up to a second.
    let start = parse(
        &METRICS
            .replace("} 8", "} 2")
            .replace("} 10", "} 2")
            .replace("_sum 1.5", "_sum 0.01")
            .replace("_count 10", "_count 2"),
    )
    .unwrap();
    let l = LagSeen::between(Some(&start), &end);
    assert_eq!(l.changes, 8);
    assert!((l.mean_secs.unwrap() - 1.49 / 8.0).abs() < 1e-9);
    // 99% of 8 is 8 changes: under 1 s, not under 0.1 s (6 of them).
    assert_eq!(l.p99_at_most_secs, Some(1.0));
    assert!(!l.restarted);
    // A region that restarted has fewer observations than before: its own are the run's.
    let l = LagSeen::between(Some(&end), &start);
    assert!(l.restarted);
    assert_eq!(l.changes, 2);
    assert_eq!(l.p99_at_most_secs, Some(0.01));
    // No observations: nothing to bound.
    assert_eq!(LagSeen::between(Some(&end), &end).p99_at_most_secs, None);
}
