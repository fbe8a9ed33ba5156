//! Shallow fusion of the n-gram model into whisper.cpp's beam search.
//!
//! whisper.cpp calls [`filter_logits`] once per decoder and step, after its own suppression
//! rules and before its log-softmax, possibly from several threads at once. The callback adds
//! `weight * max(ln P_lm(token | text tokens so far), floor)` to every text token and to
//! end-of-text, then the word bonus to the tokens that start or continue a domain word;
//! whisper.cpp then renormalises. It reads its user data only through `&` and never panics
//! across the FFI boundary (the work runs inside `catch_unwind`).

use std::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use whisper_rs::{WhisperSysContext, WhisperSysState, WhisperTokenData};

use super::AdaptedModel;

/// The user data of one `full()` call: it must outlive that call.
#[derive(Debug)]
pub(crate) struct Fusion<'m> {
    model: &'m AdaptedModel,
    n_vocab: usize,
}

impl<'m> Fusion<'m> {
    /// Fusion with `model`, for a recognizer whose vocabulary has `n_vocab` tokens.
    pub(crate) fn new(model: &'m AdaptedModel, n_vocab: usize) -> Self {
        Self { model, n_vocab }
    }

    /// The callback to give whisper.cpp, with `self` as its user data.
    pub(crate) fn callback(&self) -> whisper_rs::WhisperLogitsFilterCallback {
        Some(filter_logits)
    }

    /// Adds the adapted model's scores to `logits` after the text tokens `text` (the tokens
    /// decoded so far, below end-of-text): the n-gram model's, then the word bonus.
    pub(crate) fn apply(&self, text: &[u32], logits: &mut [f32]) {
        let history: Vec<u32> = text
            .iter()
            .copied()
            .filter(|&id| {
                !self
                    .model
                    .is_punct
                    .get(id as usize)
                    .copied()
                    .unwrap_or(true)
            })
            .collect();
        self.apply_lm(&history, logits);
        self.apply_bias(text, logits);
    }

    /// The n-gram part, after `history` (punctuation already removed). Punctuation tokens and
    /// end-of-text are both scored as a phrase end, `P(eot | history)`: punctuation is
    /// invisible to the n-gram model.
    fn apply_lm(&self, history: &[u32], logits: &mut [f32]) {
        let weight = self.model.params.lm_weight;
        if weight == 0.0 {
            return;
        }
        let eot = self.model.eot as usize;
        let lm = &self.model.lm;
        let n_text = eot.min(logits.len());
        let floor = self.model.params.lm_floor;
        let log_gamma = lm.add_log_probs(history, weight, floor, &mut logits[..n_text]);
        let end = lm.log_prob(history, self.model.eot).max(floor);
        // Punctuation never occurs in the training sequences, so its estimate is backed off.
        for &p in &self.model.punctuation {
            if let Some(l) = logits.get_mut(p as usize) {
                *l += weight * (end - lm.backed_off_log_prob(log_gamma, p).max(floor));
            }
        }
        if let Some(l) = logits.get_mut(eot) {
            *l += weight * end;
        }
    }

    /// The word bonus: `word_bonus` added once to each token that starts a domain word or
    /// continues the one `text` ends in (see [`super::bias`]).
    fn apply_bias(&self, text: &[u32], logits: &mut [f32]) {
        let bonus = self.model.params.word_bonus;
        if bonus == 0.0 {
            return;
        }
        let (continuing, starting) = self.model.bias.boosted(text);
        for &t in starting {
            if let Some(l) = logits.get_mut(t as usize) {
                *l += bonus;
            }
        }
        for &t in continuing {
            if starting.binary_search(&t).is_err() {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l += bonus;
                }
            }
        }
    }
}

/// whisper.cpp's `whisper_logits_filter_callback`.
///
/// # Safety
/// `user_data` is null or points to a live [`Fusion`]; `tokens` points to `n_tokens` token
/// records (or is null when `n_tokens` is 0); `logits` points to the vocabulary's `n_vocab`
/// floats, which this call alone may write.
unsafe extern "C" fn filter_logits(
    _ctx: *mut WhisperSysContext,
    _state: *mut WhisperSysState,
    tokens: *const WhisperTokenData,
    n_tokens: c_int,
    logits: *mut f32,
    user_data: *mut c_void,
) {
    if user_data.is_null() || logits.is_null() {
        return;
    }
    // SAFETY: per the contract above; the recognizer keeps the Fusion alive across `full()`.
    let fusion = unsafe { &*(user_data as *const Fusion<'_>) };
    let tokens: &[WhisperTokenData] = if tokens.is_null() || n_tokens <= 0 {
        &[]
    } else {
        // SAFETY: whisper.cpp passes its decoder's token vector and its length.
        unsafe { std::slice::from_raw_parts(tokens, n_tokens as usize) }
    };
    // SAFETY: whisper.cpp passes its per-decoder logits buffer of n_vocab floats.
    let logits = unsafe { std::slice::from_raw_parts_mut(logits, fusion.n_vocab) };
    let eot = fusion.model.eot;
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let text: Vec<u32> = tokens
            .iter()
            .filter_map(|t| u32::try_from(t.id).ok())
            .filter(|&id| id < eot)
            .collect();
        fusion.apply(&text, logits);
    }));
}
