//! [`PiperConfig`]: the `.onnx.json` file that comes with every Piper voice.

use std::collections::HashMap;

use serde::Deserialize;

/// Lowest and highest sample rates accepted from a voice config (Piper voices use 16 000 or
/// 22 050 Hz; anything outside this range is a broken or hostile file).
pub const SAMPLE_RATES: std::ops::RangeInclusive<u32> = 8_000..=48_000;

/// Most speakers a multi-speaker voice may declare.
const MAX_SPEAKERS: u32 = 10_000;

/// The parts of a Piper voice config that synthesis needs. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct PiperConfig {
    /// Output sample rate in Hz (`audio.sample_rate`).
    pub sample_rate: u32,
    /// espeak-ng voice that phonemizes the text (`espeak.voice`, e.g. `en-us`).
    pub espeak_voice: String,
    /// VITS noise scale (`inference.noise_scale`, default 0.667).
    pub noise_scale: f32,
    /// Length scale (`inference.length_scale`, default 1.0): larger is slower.
    pub length_scale: f32,
    /// Phoneme duration noise (`inference.noise_w`, default 0.8).
    pub noise_w: f32,
    /// Phoneme (one Unicode scalar) → model input ids.
    pub phoneme_id_map: HashMap<char, Vec<i64>>,
    /// Number of speakers; above 1 the model takes a `sid` input.
    pub num_speakers: u32,
    /// How text becomes phonemes; only `espeak` is supported.
    pub phoneme_type: String,
}

#[derive(Deserialize)]
struct Raw {
    audio: Option<RawAudio>,
    espeak: Option<RawEspeak>,
    #[serde(default)]
    inference: RawInference,
    phoneme_id_map: Option<HashMap<String, Vec<i64>>>,
    num_speakers: Option<u32>,
    num_symbols: Option<u32>,
    phoneme_type: Option<String>,
}

#[derive(Deserialize)]
struct RawAudio {
    sample_rate: Option<u32>,
}

#[derive(Deserialize)]
struct RawEspeak {
    voice: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawInference {
    noise_scale: Option<f32>,
    length_scale: Option<f32>,
    noise_w: Option<f32>,
}

impl PiperConfig {
    /// Parses and checks a voice config. The error is a sentence saying what is wrong, fit for
    /// the person importing the voice.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let raw: Raw = serde_json::from_slice(json)
            .map_err(|e| format!("the config is not valid JSON: {e}"))?;
        let sample_rate = raw
            .audio
            .and_then(|a| a.sample_rate)
            .ok_or("the config has no audio.sample_rate")?;
        if !SAMPLE_RATES.contains(&sample_rate) {
            return Err(format!(
                "audio.sample_rate {sample_rate} is outside {}..={} Hz",
                SAMPLE_RATES.start(),
                SAMPLE_RATES.end()
            ));
        }
        let espeak_voice = raw
            .espeak
            .and_then(|e| e.voice)
            .filter(|v| !v.trim().is_empty())
            .ok_or("the config has no espeak.voice")?;
        if espeak_voice.contains('\0') || espeak_voice.len() > 64 {
            return Err(format!("espeak.voice {espeak_voice:?} is not a voice name"));
        }
        let phoneme_type = raw.phoneme_type.unwrap_or_else(|| "espeak".into());
        if phoneme_type != "espeak" {
            return Err(format!(
                "phoneme_type {phoneme_type:?} is not supported (only \"espeak\")"
            ));
        }
        let num_speakers = raw.num_speakers.unwrap_or(1);
        if !(1..=MAX_SPEAKERS).contains(&num_speakers) {
            return Err(format!("num_speakers {num_speakers} is out of range"));
        }
        let inf = raw.inference;
        let noise_scale = scale("inference.noise_scale", inf.noise_scale, 0.667, 0.0..=2.0)?;
        let length_scale = scale("inference.length_scale", inf.length_scale, 1.0, 0.1..=10.0)?;
        let noise_w = scale("inference.noise_w", inf.noise_w, 0.8, 0.0..=2.0)?;

        let raw_map = raw
            .phoneme_id_map
            .ok_or("the config has no phoneme_id_map")?;
        if raw_map.is_empty() {
            return Err("phoneme_id_map is empty".into());
        }
        // The model's symbol table size, when the config states it (Piper's do).
        let max_id = raw.num_symbols.map_or(i64::MAX, |n| i64::from(n) - 1);
        let mut phoneme_id_map = HashMap::with_capacity(raw_map.len());
        for (phoneme, ids) in raw_map {
            let mut chars = phoneme.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(format!(
                    "phoneme_id_map key {phoneme:?} is not exactly one character"
                ));
            };
            if ids.is_empty() || ids.iter().any(|&id| !(0..=max_id).contains(&id)) {
                return Err(format!(
                    "phoneme_id_map entry {phoneme:?} has no ids, or an id outside \
                     0..num_symbols"
                ));
            }
            phoneme_id_map.insert(c, ids);
        }
        for required in [PAD, BOS, EOS] {
            if !phoneme_id_map.contains_key(&required) {
                return Err(format!(
                    "phoneme_id_map lacks {required:?} (pad `_`, start `^` and end `$` are \
                     required)"
                ));
            }
        }
        Ok(Self {
            sample_rate,
            espeak_voice,
            noise_scale,
            length_scale,
            noise_w,
            phoneme_id_map,
            num_speakers,
            phoneme_type,
        })
    }

    /// Model input ids for the phonemes of one sentence, as Piper's `phonemes_to_ids` makes
    /// them: `^`, then each known phoneme followed by the pad `_`, then `$`. Phonemes missing
    /// from the map are skipped and returned, so the caller can log them.
    pub fn phoneme_ids(&self, phonemes: &[char]) -> (Vec<i64>, Vec<char>) {
        let map = &self.phoneme_id_map;
        // Present in every parsed config; a hand-built one without them gets no ids for them.
        let special = |c: char| map.get(&c).map_or(&[][..], Vec::as_slice);
        let pad = special(PAD);
        let mut ids = Vec::with_capacity(phonemes.len() * 2 + 3);
        let mut missing = Vec::new();
        ids.extend_from_slice(special(BOS));
        ids.extend_from_slice(pad);
        for p in phonemes {
            match map.get(p) {
                Some(p_ids) => {
                    ids.extend_from_slice(p_ids);
                    ids.extend_from_slice(pad);
                }
                None => missing.push(*p),
            }
        }
        ids.extend_from_slice(special(EOS));
        (ids, missing)
    }
}

/// Padding between phonemes.
pub const PAD: char = '_';
/// Start of a sentence.
pub const BOS: char = '^';
/// End of a sentence.
pub const EOS: char = '$';

fn scale(
    field: &str,
    value: Option<f32>,
    default: f32,
    range: std::ops::RangeInclusive<f32>,
) -> Result<f32, String> {
    let v = value.unwrap_or(default);
    if v.is_finite() && range.contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{field} {v} is outside {}..={}",
            range.start(),
            range.end()
        ))
    }
}
