//! Fuzzes the SSML parser: it must never panic, and whatever it accepts must respect the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_engines::ssml::{parse, Segment, SsmlLimits, MAX_BREAK_MS};

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    let limits = SsmlLimits::default();
    if let Ok(parsed) = parse(doc, &limits) {
        for seg in &parsed.segments {
            match seg {
                Segment::Speak {
                    voice,
                    text,
                    prosody,
                } => {
                    assert!(!voice.trim().is_empty());
                    assert!(!text.is_empty());
                    assert!(prosody.rate.is_finite() && prosody.rate > 0.0);
                    assert!(prosody.pitch.is_finite() && prosody.pitch > 0.0);
                    assert!(prosody.volume.is_finite() && prosody.volume >= 0.0);
                }
                // Breaks are capped individually; adjacent silences merge.
                Segment::Silence { ms } => {
                    assert!(*ms > 0 && *ms <= MAX_BREAK_MS * limits.max_elements as u32 + 1000)
                }
            }
        }
    }
});
