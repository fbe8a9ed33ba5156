use super::prosody::{parse_pitch, parse_rate, parse_time_ms, parse_volume};
use super::*;

fn p(doc: &str) -> Result<SsmlDocument, EngineError> {
    parse(doc, &SsmlLimits::default())
}

#[test]
fn values() {
    assert_eq!(parse_rate("+20%", 1.0), Some(1.2));
    assert_eq!(parse_rate("-10%", 1.0), Some(0.9));
    assert_eq!(parse_rate("1.5", 1.0), Some(1.5));
    assert_eq!(parse_rate("x-fast", 1.0), Some(2.0));
    assert_eq!(parse_rate("fast!", 1.0), None);
    assert!((parse_pitch("-12st", 1.0).unwrap() - 0.5).abs() < 1e-5);
    assert!((parse_pitch("+15Hz", 1.0).unwrap() - 1.1).abs() < 1e-5);
    assert!((parse_volume("-6dB", 1.0).unwrap() - 0.501).abs() < 1e-3);
    assert_eq!(parse_volume("50", 1.0), Some(0.5));
    assert_eq!(parse_volume("150", 1.0), None);
    assert_eq!(parse_time_ms("700ms"), Some(700));
    assert_eq!(parse_time_ms("1.5s"), Some(1500));
    assert_eq!(parse_time_ms("60s"), Some(MAX_BREAK_MS));
    assert_eq!(parse_time_ms("-1s"), None);
    assert_eq!(parse_time_ms("abc"), None);
    assert_eq!(parse_time_ms("NaNs"), None);
}

#[test]
fn location_is_one_based() {
    assert_eq!(location("ab\ncd", 4), "line 2, column 2");
    assert_eq!(location("", 0), "line 1, column 1");
}

#[test]
fn merges_and_normalizes() {
    let d = p("<speak version='1.0' xml:lang='en-US'><voice name='v'>Hello\n  <emphasis>big</emphasis> world</voice></speak>").unwrap();
    assert_eq!(d.lang.as_deref(), Some("en-US"));
    assert_eq!(
        d.segments,
        vec![Segment::Speak {
            voice: "v".into(),
            text: "Hello big world".into(),
            prosody: Prosody::default()
        }]
    );
}

#[test]
fn sub_speaks_alias() {
    let d =
        p("<speak><voice name='v'><sub alias='World Wide Web'>WWW</sub></voice></speak>").unwrap();
    assert!(matches!(&d.segments[0], Segment::Speak { text, .. } if text == "World Wide Web"));
}
