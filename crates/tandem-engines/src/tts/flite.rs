//! flite 2.2 voices (CMU, BSD-style licence) through a minimal hand-written FFI.
//!
//! flite is not thread-safe: every call into it holds [`FLITE_LOCK`]. Voices are registered once
//! and live for the whole process; per-call prosody is set as voice features and restored after
//! the call.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::{Mutex, OnceLock};

use tandem_audio::Pcm;

use super::{apply_volume, Gender, Prosody, Synthesizer, Voice};
use crate::{EngineError, Result};

#[repr(C)]
struct CstVoice {
    name: *const c_char,
    features: *mut c_void,
    // Further fields are never touched from Rust.
}

#[repr(C)]
struct CstWave {
    kind: *const c_char,
    sample_rate: c_int,
    num_samples: c_int,
    num_channels: c_int,
    samples: *mut i16,
}

extern "C" {
    fn flite_init() -> c_int;
    fn register_cmu_us_slt(voxdir: *const c_char) -> *mut CstVoice;
    fn register_cmu_us_rms(voxdir: *const c_char) -> *mut CstVoice;
    fn register_cmu_us_awb(voxdir: *const c_char) -> *mut CstVoice;
    fn register_cmu_us_kal16(voxdir: *const c_char) -> *mut CstVoice;
    fn flite_text_to_wave(text: *const c_char, voice: *mut CstVoice) -> *mut CstWave;
    fn delete_wave(w: *mut CstWave);
    fn get_param_float(f: *const c_void, name: *const c_char, def: f32) -> f32;
    fn feat_set_float(f: *mut c_void, name: *const c_char, v: f32);
    fn feat_present(f: *const c_void, name: *const c_char) -> c_int;
    fn feat_remove(f: *mut c_void, name: *const c_char) -> c_int;
}

/// Serializes every call into flite.
static FLITE_LOCK: Mutex<()> = Mutex::new(());

/// Registered voice pointers (as addresses, so the static is `Sync`), in [`VOICES`] order.
static REGISTERED: OnceLock<[usize; 4]> = OnceLock::new();

/// Feature names must be `'static`: flite keeps the name pointer in the feature list.
const DURATION_STRETCH: &CStr = c"duration_stretch";
const F0_MEAN: &CStr = c"int_f0_target_mean";

/// Native sample rate of every flite voice shipped here.
const RATE: u32 = 16_000;

/// (short-name suffix, display name, gender, default F0 mean in Hz when the voice has none set).
const VOICES: [(&str, &str, Gender, f32); 4] = [
    ("SltFlite", "Slt", Gender::Female, 160.0),
    ("RmsFlite", "Rms", Gender::Male, 100.0),
    ("AwbFlite", "Awb", Gender::Male, 100.0),
    ("Kal16Flite", "Kal16", Gender::Male, 100.0),
];

/// The flite backend: US English voices `en-US-SltFlite` (F), `en-US-RmsFlite`,
/// `en-US-AwbFlite`, `en-US-Kal16Flite` (M), all 16 kHz.
#[derive(Debug, Default, Clone, Copy)]
pub struct FliteSynthesizer;

impl FliteSynthesizer {
    /// Creates the backend (voices are registered on first use).
    pub fn new() -> Self {
        Self
    }
}

fn registered() -> &'static [usize; 4] {
    REGISTERED.get_or_init(|| {
        let _g = FLITE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: flite_init and the register functions take no pointers (NULL voxdir is the
        // documented default) and are called once, under the flite lock.
        unsafe {
            flite_init();
            [
                register_cmu_us_slt(std::ptr::null()) as usize,
                register_cmu_us_rms(std::ptr::null()) as usize,
                register_cmu_us_awb(std::ptr::null()) as usize,
                register_cmu_us_kal16(std::ptr::null()) as usize,
            ]
        }
    })
}

/// Restores a voice feature to what it was before a call.
struct SavedFeature {
    name: &'static CStr,
    old: Option<f32>,
}

impl SavedFeature {
    /// # Safety
    /// `features` must be a live flite feature list and the flite lock must be held.
    unsafe fn save(features: *mut c_void, name: &'static CStr) -> Self {
        // SAFETY: per the caller's contract.
        let old = unsafe {
            (feat_present(features, name.as_ptr()) != 0)
                .then(|| get_param_float(features, name.as_ptr(), 0.0))
        };
        Self { name, old }
    }

    /// # Safety
    /// As for [`SavedFeature::save`], with the same `features`.
    unsafe fn restore(&self, features: *mut c_void) {
        // SAFETY: per the caller's contract.
        unsafe {
            match self.old {
                Some(v) => feat_set_float(features, self.name.as_ptr(), v),
                None => {
                    feat_remove(features, self.name.as_ptr());
                }
            }
        }
    }
}

impl Synthesizer for FliteSynthesizer {
    fn voices(&self) -> Vec<Voice> {
        VOICES
            .iter()
            .map(|(suffix, display, gender, _)| Voice {
                short_name: format!("en-US-{suffix}"),
                display_name: (*display).to_string(),
                locale: "en-US".into(),
                gender: *gender,
                sample_rate: RATE,
                engine: "flite",
            })
            .collect()
    }

    fn synthesize(&self, voice: &str, text: &str, prosody: &Prosody) -> Result<Pcm> {
        let idx = VOICES
            .iter()
            .position(|(suffix, ..)| {
                voice
                    .strip_prefix("en-US-")
                    .or_else(|| voice.strip_prefix("en-us-"))
                    .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
            })
            .ok_or_else(|| EngineError::UnknownVoice(voice.to_string()))?;
        let clean: String = text.chars().filter(|&c| c != '\0').collect();
        if clean.trim().is_empty() {
            return Ok(Pcm {
                sample_rate: RATE,
                samples: Vec::new(),
            });
        }
        let ctext = CString::new(clean).map_err(|e| EngineError::Engine(e.to_string()))?;
        let vptr = registered()[idx] as *mut CstVoice;
        if vptr.is_null() {
            return Err(EngineError::Engine(format!(
                "flite could not register voice {voice}"
            )));
        }
        let rate = if prosody.rate.is_finite() && prosody.rate > 0.0 {
            prosody.rate.clamp(0.25, 4.0)
        } else {
            1.0
        };
        let pitch = if prosody.pitch.is_finite() && prosody.pitch > 0.0 {
            prosody.pitch.clamp(0.25, 4.0)
        } else {
            1.0
        };

        let _g = FLITE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: vptr is a voice registered by flite (never freed); all flite calls happen under
        // FLITE_LOCK; feature names are 'static C strings; the wave is freed exactly once.
        let samples = unsafe {
            let features = (*vptr).features;
            let saved = [
                SavedFeature::save(features, DURATION_STRETCH),
                SavedFeature::save(features, F0_MEAN),
            ];
            if (rate - 1.0).abs() > f32::EPSILON {
                let base = saved[0].old.unwrap_or(1.0);
                feat_set_float(features, DURATION_STRETCH.as_ptr(), base / rate);
            }
            if (pitch - 1.0).abs() > f32::EPSILON {
                let base = saved[1].old.unwrap_or(VOICES[idx].3);
                feat_set_float(features, F0_MEAN.as_ptr(), base * pitch);
            }
            let w = flite_text_to_wave(ctext.as_ptr(), vptr);
            for s in &saved {
                s.restore(features);
            }
            if w.is_null() {
                return Err(EngineError::Engine(format!(
                    "flite produced no audio for voice {voice}"
                )));
            }
            let wave = &*w;
            let n = usize::try_from(wave.num_samples).unwrap_or(0);
            let ch = usize::try_from(wave.num_channels).unwrap_or(1).max(1);
            let out: Vec<f32> = if wave.samples.is_null() || n == 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(wave.samples, n * ch)
                    .chunks(ch)
                    .map(|f| f32::from(f[0]) / 32768.0)
                    .collect()
            };
            let sr = u32::try_from(wave.sample_rate).unwrap_or(RATE);
            delete_wave(w);
            (sr, out)
        };
        let (sample_rate, mut samples) = samples;
        apply_volume(&mut samples, prosody.volume);
        Ok(Pcm {
            sample_rate,
            samples,
        })
    }
}
