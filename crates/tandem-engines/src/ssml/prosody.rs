//! Parsing of attribute values: `<prosody>` rate, pitch and volume, and `<break>` time and
//! strength.

use super::MAX_BREAK_MS;

/// A number with optional leading sign, finite.
fn num(s: &str) -> Option<f32> {
    let s = s.trim();
    if s.is_empty() || s.contains(|c: char| !(c.is_ascii_digit() || matches!(c, '+' | '-' | '.'))) {
        return None;
    }
    let v: f32 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

/// `rate`: named, `+20%`/`-10%` relative to the current rate, or a plain multiplier.
pub(super) fn parse_rate(v: &str, current: f32) -> Option<f32> {
    let v = v.trim();
    let r = match v {
        "x-slow" => 0.5,
        "slow" => 0.64,
        "medium" | "default" => 1.0,
        "fast" => 1.55,
        "x-fast" => 2.0,
        _ => {
            if let Some(p) = v.strip_suffix('%') {
                let p = num(p)?;
                if p.is_sign_positive() && !v.starts_with(['+', '-']) {
                    // "120%": absolute percentage of the default rate.
                    p / 100.0
                } else {
                    current * (1.0 + p / 100.0)
                }
            } else {
                current * num(v)?
            }
        }
    };
    (r > 0.0).then(|| r.clamp(0.25, 4.0))
}

/// `pitch`: named, `+10%`, `-2st` semitones, `+50Hz` (relative to a nominal 150 Hz), `200Hz`.
pub(super) fn parse_pitch(v: &str, current: f32) -> Option<f32> {
    const NOMINAL_HZ: f32 = 150.0;
    let v = v.trim();
    let signed = v.starts_with(['+', '-']);
    let p = match v {
        "x-low" => 0.5,
        "low" => 0.75,
        "medium" | "default" => 1.0,
        "high" => 1.25,
        "x-high" => 1.5,
        _ => {
            if let Some(x) = v.strip_suffix('%') {
                current * (1.0 + num(x)? / 100.0)
            } else if let Some(x) = v.strip_suffix("st") {
                current * 2f32.powf(num(x)? / 12.0)
            } else if let Some(x) = v.strip_suffix("Hz").or_else(|| v.strip_suffix("hz")) {
                let hz = num(x)?;
                if signed {
                    current * (1.0 + hz / NOMINAL_HZ)
                } else {
                    hz / NOMINAL_HZ
                }
            } else {
                return None;
            }
        }
    };
    (p.is_finite() && p > 0.0).then(|| p.clamp(0.25, 4.0))
}

/// `volume`: named, absolute `0`..`100`, relative `+10`, `+6dB`, `-20%`.
pub(super) fn parse_volume(v: &str, current: f32) -> Option<f32> {
    let v = v.trim();
    let signed = v.starts_with(['+', '-']);
    let g = match v {
        "silent" => 0.0,
        "x-soft" => 0.2,
        "soft" => 0.4,
        "medium" => 0.6,
        "loud" => 0.8,
        "x-loud" | "default" => 1.0,
        _ => {
            if let Some(x) = v.strip_suffix("dB").or_else(|| v.strip_suffix("db")) {
                current * 10f32.powf(num(x)? / 20.0)
            } else if let Some(x) = v.strip_suffix('%') {
                let p = num(x)?;
                if signed {
                    current * (1.0 + p / 100.0)
                } else {
                    p / 100.0
                }
            } else {
                let n = num(v)?;
                if signed {
                    current * (1.0 + n / 100.0)
                } else if (0.0..=100.0).contains(&n) {
                    n / 100.0
                } else {
                    return None;
                }
            }
        }
    };
    g.is_finite().then(|| g.clamp(0.0, 4.0))
}

/// `500ms`, `2s`, `1.5s`; capped at [`MAX_BREAK_MS`].
pub(super) fn parse_time_ms(t: &str) -> Option<u32> {
    let t = t.trim();
    let (n, scale) = if let Some(x) = t.strip_suffix("ms") {
        (x, 1.0)
    } else if let Some(x) = t.strip_suffix('s') {
        (x, 1000.0)
    } else {
        return None;
    };
    if n.starts_with(['+', '-']) {
        return None;
    }
    let v = num(n)? * scale;
    (v >= 0.0).then(|| v.min(MAX_BREAK_MS as f32).round() as u32)
}

pub(super) fn strength_ms(s: &str) -> Option<u32> {
    Some(match s.trim() {
        "none" => 0,
        "x-weak" => 100,
        "weak" => 250,
        "medium" => 500,
        "strong" => 750,
        "x-strong" => 1000,
        _ => return None,
    })
}
