//! espeak-ng voices (GPL-3.0-or-later; only built with the `espeak` feature) through a minimal
//! hand-written FFI.
//!
//! espeak-ng keeps process-global state, so every call holds [`ESPEAK_LOCK`]. It runs in
//! synchronous mode: the synthesis callback is invoked on the calling thread and appends to a
//! thread-local buffer.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use tandem_audio::Pcm;

use super::{apply_volume, Gender, Prosody, Synthesizer, Voice};
use crate::{EngineError, Result};

const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// Do not `exit()` the process when the data directory is missing.
const ESPEAK_INITIALIZE_DONT_EXIT: c_int = 0x8000;
const ESPEAK_RATE: c_int = 1;
const ESPEAK_PITCH: c_int = 3;
const POS_CHARACTER: c_int = 1;
const ESPEAK_CHARS_UTF8: c_uint = 1;
const EE_OK: c_int = 0;

type SynthCallback = unsafe extern "C" fn(*mut i16, c_int, *mut c_void) -> c_int;

extern "C" {
    fn espeak_Initialize(
        output: c_int,
        buflength: c_int,
        path: *const c_char,
        options: c_int,
    ) -> c_int;
    fn espeak_SetSynthCallback(cb: SynthCallback);
    fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
    fn espeak_SetParameter(parameter: c_int, value: c_int, relative: c_int) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn espeak_Synth(
        text: *const c_void,
        size: usize,
        position: c_uint,
        position_type: c_int,
        end_position: c_uint,
        flags: c_uint,
        unique_identifier: *mut c_uint,
        user_data: *mut c_void,
    ) -> c_int;
    fn espeak_Synchronize() -> c_int;
    fn espeak_Info(path_data: *mut *const c_char) -> *const c_char;
}

/// Serializes every call into espeak-ng.
pub(crate) static ESPEAK_LOCK: Mutex<()> = Mutex::new(());
/// Sample rate reported by `espeak_Initialize`, or why it failed.
static INIT: OnceLock<std::result::Result<u32, String>> = OnceLock::new();

thread_local! {
    static BUFFER: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

unsafe extern "C" fn collect(wav: *mut i16, n: c_int, _events: *mut c_void) -> c_int {
    if !wav.is_null() && n > 0 {
        // SAFETY: espeak passes `n` valid samples at `wav` for the duration of the call.
        let s = unsafe { std::slice::from_raw_parts(wav, n as usize) };
        BUFFER.with(|b| b.borrow_mut().extend_from_slice(s));
    }
    0
}

/// Default speaking rate of espeak-ng, in words per minute.
const DEFAULT_WPM: f32 = 175.0;
/// Default pitch of espeak-ng (0-100).
const DEFAULT_PITCH: f32 = 50.0;
/// Nominal sample rate of espeak-ng.
const RATE: u32 = 22_050;

/// (Azure locale, espeak-ng voice).
const LOCALES: [(&str, &str); 16] = [
    ("en-GB", "en"),
    ("de-DE", "de"),
    ("fr-FR", "fr"),
    ("es-ES", "es"),
    ("es-MX", "es-419"),
    ("it-IT", "it"),
    ("pt-BR", "pt-br"),
    ("pt-PT", "pt"),
    ("nl-NL", "nl"),
    ("pl-PL", "pl"),
    ("sv-SE", "sv"),
    ("da-DK", "da"),
    ("fi-FI", "fi"),
    ("nb-NO", "nb"),
    ("cs-CZ", "cs"),
    ("ru-RU", "ru"),
];

/// The espeak-ng backend: `{locale}-Espeak` (male) and `{locale}-EspeakF` (female, variant
/// `+f2`) for a curated set of locales, 22 050 Hz.
#[derive(Debug, Default, Clone, Copy)]
pub struct EspeakSynthesizer;

impl EspeakSynthesizer {
    /// Creates the backend (espeak-ng is initialized on first use).
    pub fn new() -> Self {
        Self
    }
}

pub(crate) fn init() -> Result<u32> {
    INIT.get_or_init(|| {
        let _g = ESPEAK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: called once, under the lock; NULL path selects the built-in data directory;
        // DONT_EXIT makes a missing data directory an error instead of exit(1).
        unsafe {
            let sr = espeak_Initialize(
                AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                std::ptr::null(),
                ESPEAK_INITIALIZE_DONT_EXIT,
            );
            let mut data: *const c_char = std::ptr::null();
            espeak_Info(&mut data);
            let dir = if data.is_null() {
                String::new()
            } else {
                CStr::from_ptr(data).to_string_lossy().into_owned()
            };
            if sr <= 0 || dir.is_empty() || !Path::new(&dir).join("phontab").is_file() {
                return Err(format!(
                    "espeak-ng could not start: its data directory {dir:?} is missing or \
                     incomplete (install espeak-ng-data or set ESPEAK_DATA_PATH)"
                ));
            }
            espeak_SetSynthCallback(collect);
            Ok(u32::try_from(sr).unwrap_or(RATE))
        }
    })
    .clone()
    .map_err(EngineError::Engine)
}

impl Synthesizer for EspeakSynthesizer {
    fn voices(&self) -> Vec<Voice> {
        LOCALES
            .iter()
            .flat_map(|(locale, _)| {
                [("Espeak", Gender::Male), ("EspeakF", Gender::Female)].map(|(suffix, gender)| {
                    Voice {
                        short_name: format!("{locale}-{suffix}"),
                        display_name: suffix.to_string(),
                        locale: (*locale).to_string(),
                        gender,
                        sample_rate: RATE,
                        engine: "espeak-ng",
                    }
                })
            })
            .collect()
    }

    fn synthesize(&self, voice: &str, text: &str, prosody: &Prosody) -> Result<Pcm> {
        let unknown = || EngineError::UnknownVoice(voice.to_string());
        let (locale, suffix) = voice.rsplit_once('-').ok_or_else(unknown)?;
        let female = if suffix.eq_ignore_ascii_case("EspeakF") {
            true
        } else if suffix.eq_ignore_ascii_case("Espeak") {
            false
        } else {
            return Err(unknown());
        };
        let espeak_voice = LOCALES
            .iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(locale))
            .map(|(_, v)| *v)
            .ok_or_else(unknown)?;
        let sample_rate = init()?;
        let clean: String = text.chars().filter(|&c| c != '\0').collect();
        if clean.trim().is_empty() {
            return Ok(Pcm {
                sample_rate,
                samples: Vec::new(),
            });
        }
        let name = if female {
            format!("{espeak_voice}+f2")
        } else {
            espeak_voice.to_string()
        };
        let cname = CString::new(name).map_err(|e| EngineError::Engine(e.to_string()))?;
        let ctext = CString::new(clean).map_err(|e| EngineError::Engine(e.to_string()))?;
        let rate = if prosody.rate.is_finite() {
            prosody.rate
        } else {
            1.0
        };
        let pitch = if prosody.pitch.is_finite() {
            prosody.pitch
        } else {
            1.0
        };
        let wpm = (DEFAULT_WPM * rate).clamp(80.0, 450.0).round() as c_int;
        let pitch = (DEFAULT_PITCH * pitch).clamp(0.0, 100.0).round() as c_int;

        let _g = ESPEAK_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        BUFFER.with(|b| b.borrow_mut().clear());
        // SAFETY: espeak-ng was initialized; all calls happen under ESPEAK_LOCK; the strings
        // outlive the calls; synchronous mode means the callback runs on this thread before
        // espeak_Synth returns.
        unsafe {
            if espeak_SetVoiceByName(cname.as_ptr()) != EE_OK {
                return Err(EngineError::Engine(format!(
                    "espeak-ng has no voice {:?} (is espeak-ng-data complete?)",
                    cname
                )));
            }
            espeak_SetParameter(ESPEAK_RATE, wpm, 0);
            espeak_SetParameter(ESPEAK_PITCH, pitch, 0);
            let bytes = ctext.as_bytes_with_nul();
            let rc = espeak_Synth(
                bytes.as_ptr().cast(),
                bytes.len(),
                0,
                POS_CHARACTER,
                0,
                ESPEAK_CHARS_UTF8,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            espeak_Synchronize();
            if rc != EE_OK {
                return Err(EngineError::Engine(format!(
                    "espeak-ng synthesis failed (code {rc})"
                )));
            }
        }
        let mut samples: Vec<f32> = BUFFER.with(|b| {
            let mut b = b.borrow_mut();
            let out = b.iter().map(|&s| f32::from(s) / 32768.0).collect();
            b.clear();
            b.shrink_to(1 << 16);
            out
        });
        apply_volume(&mut samples, prosody.volume);
        Ok(Pcm {
            sample_rate,
            samples,
        })
    }
}
