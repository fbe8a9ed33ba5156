//! Piper voices: VITS models exported to ONNX (`voice.onnx` plus its `voice.onnx.json`), run by
//! ONNX Runtime, the base of custom neural voices.
//!
//! Text goes through espeak-ng to IPA phonemes (clause by clause, as Piper does it), the phonemes
//! to the model's input ids ([`PiperConfig::phoneme_ids`]), and each sentence through the model
//! to audio at the config's sample rate. ONNX Runtime is a shared library loaded at run time
//! ([`init_onnxruntime`]); nothing is downloaded when building.
//!
//! A voice is checked when it is loaded (the model's inputs against its config) and can be
//! test-spoken with [`PiperVoice::validate`], so an import refuses a broken voice with the
//! reason instead of failing later.

mod config;
mod phonemize;
mod runtime;
#[cfg(test)]
mod tests;

pub use config::{PiperConfig, SAMPLE_RATES};
pub use runtime::{init_onnxruntime, onnxruntime_path, ONNXRUNTIME_ENV};

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use ort::session::Session;
use ort::value::{Tensor, TensorElementType};
use tandem_audio::Pcm;

use super::{apply_volume, Prosody};
use crate::{EngineError, Result};

/// The sentence [`PiperVoice::validate`] speaks.
pub const VALIDATION_SENTENCE: &str = "The quick brown fox jumps over the lazy dog.";

/// Peak level each synthesized sentence is normalized to (Piper scales to full scale; this
/// leaves a little headroom for resampling).
const PEAK: f32 = 0.95;
/// Silence between sentences, seconds (Piper's default `sentence_silence`).
const SENTENCE_SILENCE_SECS: f32 = 0.2;
/// Slowest and fastest speaking rates accepted from [`Prosody::rate`].
const RATE_RANGE: (f32, f32) = (0.25, 4.0);

/// A loaded Piper voice. Synthesis is serialized per voice (one ONNX session).
pub struct PiperVoice {
    name: String,
    config: PiperConfig,
    multi_speaker: bool,
    output: String,
    session: Mutex<Session>,
}

impl std::fmt::Debug for PiperVoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PiperVoice")
            .field("name", &self.name)
            .field("sample_rate", &self.config.sample_rate)
            .field("espeak_voice", &self.config.espeak_voice)
            .finish_non_exhaustive()
    }
}

/// What [`PiperVoice::validate`] measured on its test sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationReport {
    /// Length of the audio, seconds.
    pub duration_secs: f64,
    /// Time inside speech segments, seconds.
    pub voiced_secs: f64,
    /// RMS level, dBFS.
    pub rms_dbfs: f32,
    /// Wall-clock synthesis time divided by the audio's duration.
    pub rtf: f64,
}

impl PiperVoice {
    /// Loads a voice that synthesizes on one thread (the server runs engines on a worker pool;
    /// on 2 cores one thread was also faster than two: RTF 0.08 against 0.12). ONNX Runtime is
    /// found in the default model directory (see [`init_onnxruntime`]);
    /// [`PiperVoice::load_with`] takes both explicitly.
    pub fn load(onnx_path: &Path, json_path: &Path) -> Result<Self> {
        Self::load_with(onnx_path, json_path, &default_model_dir(), 1)
    }

    /// Loads a voice with ONNX Runtime from `model_dir` (or the environment) and `threads`
    /// threads per synthesis. A config or model that does not fit is
    /// [`EngineError::BadModel`] naming the reason.
    pub fn load_with(
        onnx_path: &Path,
        json_path: &Path,
        model_dir: &Path,
        threads: usize,
    ) -> Result<Self> {
        let name = voice_name(onnx_path);
        let bad = |reason: String| EngineError::BadModel {
            name: name.clone(),
            reason,
        };
        let json = std::fs::read(json_path)
            .map_err(|e| EngineError::io(format!("reading {}", json_path.display()), e))?;
        let config = PiperConfig::parse(&json).map_err(&bad)?;
        if !onnx_path.is_file() {
            return Err(EngineError::io(
                format!("opening {}", onnx_path.display()),
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        let env = runtime::environment(model_dir)?;
        let session = Session::builder(env)
            .and_then(|b| Ok(b.with_intra_threads(threads.max(1))?))
            .and_then(|mut b| b.commit_from_file(onnx_path))
            .map_err(|e| bad(format!("ONNX Runtime cannot load the model: {e}")))?;
        let (multi_speaker, output) = check_signature(&session, &config).map_err(bad)?;
        Ok(Self {
            name,
            config,
            multi_speaker,
            output,
            session: Mutex::new(session),
        })
    }

    /// The voice's name (its file name without `.onnx`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The parsed config.
    pub fn config(&self) -> &PiperConfig {
        &self.config
    }

    /// Output sample rate, Hz.
    pub fn sample_rate(&self) -> u32 {
        self.config.sample_rate
    }

    /// Speaks plain `text`: mono audio at [`PiperVoice::sample_rate`]. `prosody.rate` divides
    /// the length scale and `prosody.volume` is a gain; VITS has no pitch control, so
    /// `prosody.pitch` is ignored. Empty text (or text without phonemes) gives empty audio.
    pub fn synthesize(&self, text: &str, prosody: &Prosody) -> Result<Pcm> {
        let sentences = phonemize::phonemize(&self.config.espeak_voice, text)?;
        let rate = if prosody.rate.is_finite() {
            prosody.rate.clamp(RATE_RANGE.0, RATE_RANGE.1)
        } else {
            1.0
        };
        let scales = [
            self.config.noise_scale,
            self.config.length_scale / rate,
            self.config.noise_w,
        ];
        let silence = (SENTENCE_SILENCE_SECS * self.config.sample_rate as f32 / rate) as usize;
        let mut samples = Vec::new();
        for (i, phonemes) in sentences.iter().enumerate() {
            let (ids, missing) = self.config.phoneme_ids(phonemes);
            if !missing.is_empty() {
                tracing::debug!(voice = %self.name, ?missing, "phonemes not in the voice's map");
            }
            let mut audio = self.infer(ids, scales)?;
            normalize(&mut audio);
            if i > 0 {
                samples.resize(samples.len() + silence, 0.0);
            }
            samples.extend_from_slice(&audio);
        }
        apply_volume(&mut samples, prosody.volume);
        Ok(Pcm {
            sample_rate: self.config.sample_rate,
            samples,
        })
    }

    /// Test-speaks [`VALIDATION_SENTENCE`] and checks that the result is speech: plausible
    /// duration, enough voiced time, not silent. A voice that fails is
    /// [`EngineError::BadModel`] with the reason.
    pub fn validate(&self) -> Result<ValidationReport> {
        let bad = |reason: String| EngineError::BadModel {
            name: self.name.clone(),
            reason,
        };
        let t = Instant::now();
        let pcm = self
            .synthesize(VALIDATION_SENTENCE, &Prosody::default())
            .map_err(|e| match e {
                EngineError::BadModel { .. } => e,
                other => bad(format!("test synthesis failed: {other}")),
            })?;
        let duration_secs = pcm.duration_secs();
        let report = ValidationReport {
            duration_secs,
            voiced_secs: tandem_audio::voiced_secs(&pcm),
            rms_dbfs: tandem_audio::rms_dbfs(&pcm),
            rtf: t.elapsed().as_secs_f64() / duration_secs.max(1e-3),
        };
        // Nine words: about 2.5 s at a normal pace.
        if !(0.8..=15.0).contains(&report.duration_secs) {
            return Err(bad(format!(
                "the test sentence came out {:.2} s long (expected 0.8-15 s)",
                report.duration_secs
            )));
        }
        if report.rms_dbfs < -40.0 {
            return Err(bad(format!(
                "the test sentence is nearly silent ({:.1} dBFS RMS)",
                report.rms_dbfs
            )));
        }
        if report.voiced_secs < 0.5 {
            return Err(bad(format!(
                "the test sentence holds only {:.2} s of speech",
                report.voiced_secs
            )));
        }
        Ok(report)
    }

    /// Runs the model on one sentence's ids.
    fn infer(&self, ids: Vec<i64>, scales: [f32; 3]) -> Result<Vec<f32>> {
        let bad = |what: &str, e: ort::Error| EngineError::BadModel {
            name: self.name.clone(),
            reason: format!("{what}: {e}"),
        };
        let n = ids.len() as i64;
        let input = Tensor::from_array(([1i64, n], ids)).map_err(|e| bad("input", e))?;
        let lengths = Tensor::from_array(([1i64], vec![n])).map_err(|e| bad("input", e))?;
        let scales = Tensor::from_array(([3i64], scales.to_vec())).map_err(|e| bad("input", e))?;
        let mut inputs = ort::inputs![
            "input" => input,
            "input_lengths" => lengths,
            "scales" => scales,
        ];
        if self.multi_speaker {
            let sid = Tensor::from_array(([1i64], vec![0i64])).map_err(|e| bad("input", e))?;
            inputs.push(("sid".into(), sid.into()));
        }
        let mut session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let outputs = session
            .run(inputs)
            .map_err(|e| bad("synthesis failed", e))?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| EngineError::BadModel {
                name: self.name.clone(),
                reason: format!("the model returned no {:?} output", self.output),
            })?;
        let (_, audio) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| bad("reading the audio", e))?;
        if audio.iter().any(|x| !x.is_finite()) {
            return Err(EngineError::BadModel {
                name: self.name.clone(),
                reason: "the model produced NaN or infinite samples".into(),
            });
        }
        Ok(audio.to_vec())
    }
}

/// Checks the model's inputs and outputs against what Piper feeds it and against the config.
/// Returns whether it takes a speaker id, and the name of its audio output.
fn check_signature(
    session: &Session,
    config: &PiperConfig,
) -> std::result::Result<(bool, String), String> {
    let inputs: Vec<(&str, Option<TensorElementType>)> = session
        .inputs()
        .iter()
        .map(|o| (o.name(), o.dtype().tensor_type()))
        .collect();
    let names: Vec<&str> = inputs.iter().map(|(n, _)| *n).collect();
    for (name, ty) in [
        ("input", TensorElementType::Int64),
        ("input_lengths", TensorElementType::Int64),
        ("scales", TensorElementType::Float32),
    ] {
        match inputs.iter().find(|(n, _)| *n == name) {
            None => {
                return Err(format!(
                    "the model has no {name:?} input (its inputs are {names:?}): not a Piper voice"
                ))
            }
            Some((_, t)) if *t != Some(ty) => {
                return Err(format!("the model's {name:?} input is {t:?}, not {ty:?}"))
            }
            Some(_) => {}
        }
    }
    let multi_speaker = names.contains(&"sid");
    if let Some(extra) = names
        .iter()
        .find(|n| !["input", "input_lengths", "scales", "sid"].contains(n))
    {
        return Err(format!(
            "the model has an unexpected input {extra:?}: not a Piper voice"
        ));
    }
    match (multi_speaker, config.num_speakers) {
        (false, n) if n > 1 => {
            return Err(format!(
                "the config declares {n} speakers but the model takes no speaker id: the \
                 config does not belong to this model"
            ))
        }
        (true, 1) => {
            return Err(
                "the model takes a speaker id but the config declares one speaker: \
                        the config does not belong to this model"
                    .into(),
            )
        }
        _ => {}
    }
    let output = session.outputs().first().ok_or("the model has no output")?;
    if output.dtype().tensor_type() != Some(TensorElementType::Float32) {
        return Err(format!(
            "the model's output {:?} is not a float tensor",
            output.name()
        ));
    }
    Ok((multi_speaker, output.name().to_string()))
}

/// Scales audio so its peak is [`PEAK`] (as Piper does per sentence; quiet audio is raised at
/// most 100-fold, like Piper's 0.01 floor).
fn normalize(audio: &mut [f32]) {
    let peak = audio.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let gain = PEAK / peak.max(0.01);
    for s in audio {
        *s = (*s * gain).clamp(-1.0, 1.0);
    }
}

/// `en_US-joe-medium.onnx` → `en_US-joe-medium`.
fn voice_name(onnx_path: &Path) -> String {
    onnx_path
        .file_name()
        .map(|n| n.to_string_lossy())
        .map(|n| n.strip_suffix(".onnx").unwrap_or(&n).to_string())
        .unwrap_or_else(|| "piper".into())
}

/// Where `tandem models pull` puts models by default (the same rule as
/// `tandem_core::default_model_dir`, which this crate does not depend on): `$TANDEM_MODEL_DIR`,
/// else `$XDG_CACHE_HOME/tandem/models`, else `~/.cache/tandem/models`.
fn default_model_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(dir) = std::env::var_os("TANDEM_MODEL_DIR") {
        return dir.into();
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("tandem/models");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache/tandem/models")
}
