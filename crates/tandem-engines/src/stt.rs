//! Speech-to-text.

use std::path::Path;
use std::sync::{Mutex, Once};

use whisper_rs::{
    FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters, WhisperState,
};

use crate::adapt::{AdaptedModel, Fusion, Vocabulary};
use crate::{EngineError, Result};

/// Options for one recognition.
#[derive(Debug, Clone)]
pub struct RecognizeOptions {
    /// BCP-47 language, e.g. `en-US`.
    pub language: String,
    /// Whisper `audio_ctx` to use for clips that fit in it (0 = the full 30 s window).
    pub audio_ctx: u32,
}

/// The result of recognizing one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition {
    /// Display text as the engine produced it (punctuation and casing included).
    pub text: String,
    /// Confidence in [0, 1]: the geometric mean of the token probabilities.
    pub confidence: f32,
}

/// A speech-to-text engine. Implementations are synchronous and CPU-bound.
pub trait Recognizer: Send + Sync {
    /// A short name for logs and metrics, e.g. `whisper-tiny.en`.
    fn name(&self) -> &str;
    /// Whether `language` (BCP-47) can be recognized.
    fn supports_language(&self, language: &str) -> bool;
    /// Recognizes 16 kHz mono audio.
    fn recognize(&self, pcm_16k: &[f32], opts: &RecognizeOptions) -> Result<Recognition>;
    /// The token vocabulary that [`AdaptedModel::train`] needs, when this engine can be adapted.
    fn vocabulary(&self) -> Option<&dyn Vocabulary> {
        None
    }
    /// Recognizes with a language-adapted model (Custom Speech); `None` is
    /// [`Recognizer::recognize`]. Engines that cannot be adapted refuse a model.
    fn recognize_with_model(
        &self,
        pcm_16k: &[f32],
        opts: &RecognizeOptions,
        adapted: Option<&AdaptedModel>,
    ) -> Result<Recognition> {
        match adapted {
            None => self.recognize(pcm_16k, opts),
            Some(m) => Err(EngineError::BadModel {
                name: self.name().to_owned(),
                reason: format!(
                    "this engine cannot use a model adapted for {}",
                    m.base_model()
                ),
            }),
        }
    }
}

/// Sample rate Whisper expects.
pub const SAMPLE_RATE: usize = 16_000;
/// Clips shorter than this many samples (1.1 s) are padded with silence: whisper.cpp refuses
/// input under one second.
const MIN_SAMPLES: usize = SAMPLE_RATE * 11 / 10;
/// Whisper's full encoder window: 1500 frames for 30 s.
const FULL_AUDIO_CTX: u32 = 1500;
/// Seconds of margin kept free at the end of a reduced `audio_ctx` window.
const AUDIO_CTX_MARGIN_S: f32 = 1.0;

/// Clips whose peak stays below this (about -60 dBFS) are silence and yield no text.
const SILENCE_PEAK: f32 = 1e-3;
/// Whisper's `no_speech` probability above which a low-confidence result is dropped.
const NO_SPEECH_THOLD: f32 = 0.6;
/// Mean token log-probability below which a likely no-speech result is dropped.
const LOGPROB_THOLD: f64 = -1.0;

/// The `audio_ctx` to use for a clip of `samples` samples: `requested` if the clip fits in that
/// window with a margin, else 0 (the full 30 s window).
pub fn effective_audio_ctx(requested: u32, samples: usize) -> u32 {
    if requested == 0 || requested >= FULL_AUDIO_CTX {
        return 0;
    }
    let window_s = requested as f32 / FULL_AUDIO_CTX as f32 * 30.0;
    let clip_s = samples as f32 / SAMPLE_RATE as f32;
    if clip_s <= window_s - AUDIO_CTX_MARGIN_S {
        requested
    } else {
        0
    }
}

/// The Whisper language code for a BCP-47 tag (`en-US` → `en`, `de-DE` → `de`): its primary
/// subtag, lowercased, when the model can decode that language. An English-only model
/// (`multilingual == false`, e.g. tiny.en) decodes only `en`; a multilingual one any of
/// Whisper's languages (`yue`, `haw`…); full names (`english`) are not language tags.
pub fn whisper_language(tag: &str, multilingual: bool) -> Option<String> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    if primary == "en" {
        return Some(primary);
    }
    let code_like =
        (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
    if !multilingual || !code_like {
        return None;
    }
    whisper_rs::get_lang_id(&primary).map(|_| primary)
}

/// Whisper (whisper.cpp via `whisper-rs`) with a ggml model: English-only such as
/// `ggml-tiny.en.bin`, or multilingual such as `ggml-base.bin`, whose decoding language is then
/// set from each request's locale ([`whisper_language`]). Decoder states are pooled and reused
/// across calls; calls may run concurrently (each takes its own state).
pub struct WhisperRecognizer {
    ctx: WhisperContext,
    pool: Mutex<Vec<WhisperState>>,
    threads: usize,
    name: String,
    eot: i32,
    /// Whether the model decodes many languages (a 51 865-token vocabulary).
    multilingual: bool,
    /// sha256 of the model file when it is a pinned model (see [`crate::models::pinned`]).
    sha256: String,
}

impl std::fmt::Debug for WhisperRecognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperRecognizer")
            .field("name", &self.name)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

static LOGGING: Once = Once::new();

/// Silences whisper.cpp's and ggml's own logging to stderr (idempotent).
pub fn silence_whisper_logs() {
    LOGGING.call_once(whisper_rs::install_logging_hooks);
}

impl WhisperRecognizer {
    /// Loads a ggml Whisper model. `threads` is the number of CPU threads per recognition
    /// (at least 1).
    pub fn load(model_path: &Path, threads: usize) -> Result<Self> {
        silence_whisper_logs();
        let name = model_path
            .file_stem()
            .and_then(|s| s.to_str())
            .map(|s| {
                let s = s.strip_prefix("ggml-").unwrap_or(s);
                format!("whisper-{s}")
            })
            .unwrap_or_else(|| "whisper".into());
        if !model_path.is_file() {
            return Err(EngineError::ModelMissing {
                name,
                dir: model_path
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            });
        }
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false);
        let ctx = WhisperContext::new_with_params(model_path, params).map_err(|e| {
            EngineError::BadModel {
                name: name.clone(),
                reason: format!("whisper.cpp cannot load {}: {e}", model_path.display()),
            }
        })?;
        let eot = ctx.token_eot();
        let multilingual = ctx.is_multilingual();
        let first = ctx
            .create_state()
            .map_err(|e| EngineError::Engine(format!("creating a whisper state: {e}")))?;
        let sha256 = crate::models::pinned(&name)
            .map(|m| m.ggml_sha256.to_string())
            .unwrap_or_default();
        Ok(Self {
            ctx,
            pool: Mutex::new(vec![first]),
            threads: threads.max(1),
            name,
            eot,
            multilingual,
            sha256,
        })
    }

    fn take_state(&self) -> Result<WhisperState> {
        let pooled = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        match pooled {
            Some(s) => Ok(s),
            None => self.fresh_state(),
        }
    }

    fn fresh_state(&self) -> Result<WhisperState> {
        self.ctx
            .create_state()
            .map_err(|e| EngineError::Engine(format!("creating a whisper state: {e}")))
    }

    fn give_back(&self, state: WhisperState) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(state);
        }
    }

    /// Whether the model decodes languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.multilingual
    }

    fn run(
        &self,
        state: &mut WhisperState,
        pcm: &[f32],
        language: &str,
        audio_ctx: u32,
        adapted: Option<&AdaptedModel>,
    ) -> Result<Recognition> {
        let strategy = match adapted {
            Some(m) => SamplingStrategy::BeamSearch {
                beam_size: m.params().beam_size.clamp(1, 16) as i32,
                patience: -1.0,
            },
            None => SamplingStrategy::Greedy { best_of: 1 },
        };
        // Both live until the end of this function, past `full()`, which reads them.
        let fusion = adapted.map(|m| Fusion::new(m, self.ctx.n_vocab().max(0) as usize));
        let prompt: Vec<i32> = adapted
            .map(|m| m.prompt_tokens().iter().map(|&t| t as i32).collect())
            .unwrap_or_default();
        let mut params = FullParams::new(strategy);
        params.set_n_threads(self.threads as i32);
        params.set_language(Some(language));
        params.set_translate(false);
        params.set_no_context(true);
        params.set_no_timestamps(true);
        params.set_single_segment(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_temperature(0.0);
        params.set_audio_ctx(audio_ctx as i32);
        if !prompt.is_empty() {
            params.set_tokens(&prompt);
        }
        if adapted.is_some() {
            // No temperature fallback: the fused scores are not calibrated for whisper.cpp's
            // entropy and log-probability thresholds, and a sampled retry would make the result
            // depend on the state's random generator rather than on the audio and the model.
            params.set_temperature_inc(0.0);
        }
        if let Some(fusion) = &fusion {
            // SAFETY: the callback only reads `fusion` (through `&`), which outlives `full()`
            // below; it never touches the context or state, and it catches its own panics.
            unsafe {
                params.set_filter_logits_callback(fusion.callback());
                params.set_filter_logits_callback_user_data(
                    fusion as *const Fusion<'_> as *mut std::ffi::c_void,
                );
            }
        }
        state
            .full(params, pcm)
            .map_err(|e| EngineError::Engine(format!("whisper: {e}")))?;

        let mut text = String::new();
        let mut logprob_sum = 0.0f64;
        let mut n_tokens = 0usize;
        let mut no_speech = 0.0f32;
        for segment in state.as_iter() {
            no_speech = no_speech.max(segment.no_speech_probability());
            text.push_str(
                &segment
                    .to_str_lossy()
                    .map_err(|e| EngineError::Engine(format!("whisper text: {e}")))?,
            );
            for i in 0..segment.n_tokens() {
                if let Some(token) = segment.get_token(i) {
                    let data = token.token_data();
                    if data.id < self.eot {
                        logprob_sum += f64::from(data.plog);
                        n_tokens += 1;
                    }
                }
            }
        }
        let mut text = clean_text(&text);
        if let Some(m) = adapted {
            text = m.apply_display_forms(&text);
        }
        let mean_logprob = if n_tokens == 0 {
            f64::NEG_INFINITY
        } else {
            logprob_sum / n_tokens as f64
        };
        tracing::debug!(no_speech, mean_logprob, text = %text, "whisper result");
        // OpenAI's silence rule: a likely no-speech window decoded with low confidence.
        if text.is_empty() || (no_speech > NO_SPEECH_THOLD && mean_logprob < LOGPROB_THOLD) {
            return Ok(Recognition {
                text: String::new(),
                confidence: 0.0,
            });
        }
        let confidence = (mean_logprob.exp() as f32).clamp(0.0, 1.0);
        Ok(Recognition { text, confidence })
    }

    /// Recognizes 16 kHz mono audio, with a language-adapted model when `adapted` is given
    /// (beam search with the model's n-gram fused in, its prompt, and its display forms).
    /// With `None` this is exactly [`Recognizer::recognize`].
    pub fn recognize_adapted(
        &self,
        pcm_16k: &[f32],
        opts: &RecognizeOptions,
        adapted: Option<&AdaptedModel>,
    ) -> Result<Recognition> {
        if let Some(m) = adapted {
            if m.base_model() != self.name || m.n_vocab() as i32 != self.ctx.n_vocab() {
                return Err(EngineError::BadModel {
                    name: self.name.clone(),
                    reason: format!(
                        "the adapted model was trained for {}, not for this model",
                        m.base_model()
                    ),
                });
            }
        }
        let language = whisper_language(&opts.language, self.multilingual)
            .ok_or_else(|| EngineError::UnsupportedLanguage(opts.language.clone()))?;
        let padded;
        let pcm = if pcm_16k.len() < MIN_SAMPLES {
            let mut p = Vec::with_capacity(MIN_SAMPLES);
            p.extend_from_slice(pcm_16k);
            p.resize(MIN_SAMPLES, 0.0);
            padded = p;
            &padded[..]
        } else {
            pcm_16k
        };
        if pcm.iter().all(|x| x.abs() < SILENCE_PEAK) {
            // Digital silence: Whisper would hallucinate ("you", "Thank you.").
            return Ok(Recognition {
                text: String::new(),
                confidence: 0.0,
            });
        }
        let audio_ctx = effective_audio_ctx(opts.audio_ctx, pcm.len());
        // Beam search (adapted decoding) runs on a fresh state: on a reused one, whisper.cpp's
        // beam-search decoders start from what the previous decode left, so a clip's result
        // would depend on the clips decoded before it (measured: 2 of 12 biology clips
        // changed when decoded in reverse order; none on fresh states). Greedy decoding is not
        // affected and keeps the pooled states.
        let mut state = if adapted.is_some() {
            self.fresh_state()?
        } else {
            self.take_state()?
        };
        let result = self.run(&mut state, pcm, &language, audio_ctx, adapted);
        if result.is_ok() && adapted.is_none() {
            // A state whose run failed is dropped rather than reused.
            self.give_back(state);
        }
        result
    }
}

impl Vocabulary for WhisperRecognizer {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn model_sha256(&self) -> &str {
        &self.sha256
    }

    fn n_vocab(&self) -> u32 {
        self.ctx.n_vocab().max(0) as u32
    }

    fn sot(&self) -> u32 {
        self.ctx.token_sot().max(0) as u32
    }

    fn eot(&self) -> u32 {
        self.eot.max(0) as u32
    }

    fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        let id = i32::try_from(id).ok()?;
        if id >= self.ctx.n_vocab() {
            return None;
        }
        self.ctx.token_to_bytes(id).ok().map(<[u8]>::to_vec)
    }
}

impl Recognizer for WhisperRecognizer {
    fn name(&self) -> &str {
        &self.name
    }

    /// `en` and any `en-*` tag for the English-only (`.en`) models; any of Whisper's
    /// languages for a multilingual one ([`whisper_language`]).
    fn supports_language(&self, language: &str) -> bool {
        whisper_language(language, self.multilingual).is_some()
    }

    fn recognize(&self, pcm_16k: &[f32], opts: &RecognizeOptions) -> Result<Recognition> {
        self.recognize_adapted(pcm_16k, opts, None)
    }

    fn vocabulary(&self) -> Option<&dyn Vocabulary> {
        Some(self)
    }

    fn recognize_with_model(
        &self,
        pcm_16k: &[f32],
        opts: &RecognizeOptions,
        adapted: Option<&AdaptedModel>,
    ) -> Result<Recognition> {
        self.recognize_adapted(pcm_16k, opts, adapted)
    }
}

/// Non-speech annotations Whisper emits in brackets or parentheses.
const NON_SPEECH: &[&str] = &[
    "blank_audio",
    "blank audio",
    "silence",
    "music",
    "music playing",
    "applause",
    "laughter",
    "laughs",
    "noise",
    "inaudible",
    "no speech",
    "sound",
    "static",
    "beeping",
    "wind blowing",
    "background noise",
    "coughing",
    "sighs",
    "clapping",
];

/// Removes Whisper's non-speech markers (`[BLANK_AUDIO]`, `(music)`, `[ Silence ]`, `*sigh*`,
/// `♪`) and collapses whitespace.
pub fn clean_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(['[', '(', '*']) {
        let open = rest[pos..].chars().next().unwrap_or('[');
        let close = match open {
            '[' => ']',
            '(' => ')',
            _ => '*',
        };
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        match after.find(close) {
            Some(end) => {
                let inner = after[..end].trim().to_lowercase();
                let inner = inner.trim_end_matches(['.', '!']);
                // Brackets are never speech in Whisper output; parentheses and asterisks are
                // removed only when they hold a known annotation.
                let drop = open == '[' || NON_SPEECH.contains(&inner);
                if !drop {
                    out.push(open);
                    out.push_str(&after[..=end]);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push(open);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace(['♪', '♫'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_removed() {
        assert_eq!(clean_text(" [BLANK_AUDIO]"), "");
        assert_eq!(clean_text("(music)"), "");
        assert_eq!(clean_text("[ Silence ]"), "");
        assert_eq!(clean_text(" Hello (laughs) world. "), "Hello world.");
        assert_eq!(clean_text("It was (very) big"), "It was (very) big");
        assert_eq!(clean_text("♪ la la ♪"), "la la");
        assert_eq!(clean_text("a (b"), "a (b");
        assert_eq!(
            clean_text("  What dinosaurs lived?"),
            "What dinosaurs lived?"
        );
    }

    #[test]
    fn the_language_comes_from_the_locale() {
        assert_eq!(whisper_language("en-US", false).as_deref(), Some("en"));
        assert_eq!(whisper_language("EN_gb", false).as_deref(), Some("en"));
        assert_eq!(whisper_language("en", true).as_deref(), Some("en"));
        assert_eq!(
            whisper_language("de-DE", false),
            None,
            "tiny.en is English only"
        );
        assert_eq!(whisper_language("de-DE", true).as_deref(), Some("de"));
        assert_eq!(whisper_language("fr-CA", true).as_deref(), Some("fr"));
        assert_eq!(whisper_language("yue-HK", true).as_deref(), Some("yue"));
        assert_eq!(whisper_language("xx-XX", true), None);
        assert_eq!(whisper_language("english", true), None);
        assert_eq!(whisper_language("", true), None);
    }

    #[test]
    fn audio_ctx_only_for_short_clips() {
        // 768 frames = 15.36 s window; with 1 s margin, up to 14.36 s.
        assert_eq!(effective_audio_ctx(768, 16_000 * 5), 768);
        assert_eq!(effective_audio_ctx(768, 16_000 * 15), 0);
        assert_eq!(effective_audio_ctx(0, 16_000), 0);
        assert_eq!(effective_audio_ctx(1500, 16_000), 0);
    }
}
