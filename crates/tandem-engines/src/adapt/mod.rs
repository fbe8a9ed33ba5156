//! Custom Speech language adaptation: a domain model trained from plain text in milliseconds.
//!
//! An [`AdaptedModel`] is trained from Language data (plain text) and Pronunciation data
//! (`display<TAB>spoken`) only — never from audio or transcripts. It holds:
//!
//! - an interpolated Kneser-Ney n-gram language model over the recognizer's own BPE tokens
//!   ([`ngram`]), encoded exactly as Whisper's tokenizer does ([`bpe`]). During beam search it is
//!   fused into Whisper's next-token scores through whisper.cpp's logits filter ("shallow
//!   fusion": `logit + weight * max(ln P_lm, floor)`, renormalised by whisper.cpp). The floor
//!   keeps the small domain model from vetoing ordinary words it has never seen; sentence
//!   punctuation is invisible to it and scored like an end of phrase;
//! - the domain's rare words (those Whisper's vocabulary splits into pieces) as a prefix trie
//!   of tokens (`bias.rs`): with [`AdaptParams::word_bonus`], every token that starts such a
//!   word or continues the one being spelled gets a fixed logit bonus, whatever the context
//!   (the n-gram model alone backs off to its floor where the text never had the preceding
//!   words, and Whisper's acoustic favourite wins: "Phyllis" for "Felis");
//! - a prompt of the domain's rarest words (the words Whisper's vocabulary splits into the most
//!   pieces), given to Whisper as previous-context tokens (contextual biasing). It is stored but
//!   off by default ([`AdaptParams::prompt_tokens`]): it did not help on the tuning half;
//! - the pronunciation pairs: spoken forms in the result are replaced by their display forms,
//!   and display forms are added to the training text.
//!
//! The defaults of [`AdaptParams`] were chosen on half A of the biology set only (25 of its 50
//! recordings, sorted by name, even positions) and are reported on the held-out half B; see
//! BENCHMARKS.md and `tests/adapt_eval.rs`.
//!
//! [`AdaptedModel::to_bytes`] makes a versioned, self-contained artifact (layout in `codec.rs`) that
//! names its base model by name and sha256 only.

mod bias;
pub mod bpe;
mod codec;
mod fusion;
pub mod ngram;
#[cfg(test)]
mod tests;

pub use codec::{inspect, ArtifactHeader, FORMAT_VERSION};
pub(crate) use fusion::Fusion;

use crate::{EngineError, Result};
use bias::BiasTrie;
use bpe::Bpe;
use ngram::NgramLm;

/// What [`AdaptedModel::train`] needs from the recognizer: its identity and its token vocabulary.
pub trait Vocabulary {
    /// Base model name, e.g. `whisper-tiny.en`.
    fn model_name(&self) -> &str;
    /// sha256 (hex) of the base model file, or empty when unknown.
    fn model_sha256(&self) -> &str;
    /// Number of tokens, special ones included.
    fn n_vocab(&self) -> u32;
    /// The start-of-transcript token (used as the n-gram model's sentence start).
    fn sot(&self) -> u32;
    /// The end-of-text token: text tokens are the ids below it.
    fn eot(&self) -> u32;
    /// The bytes of text token `id`.
    fn token_bytes(&self, id: u32) -> Option<Vec<u8>>;
}

/// Tunable parts of an adapted model, stored in its artifact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptParams {
    /// n-gram order over BPE tokens.
    pub order: u32,
    /// Weight of the language model's log-probability in shallow fusion (0 turns it off).
    pub lm_weight: f32,
    /// Natural-log floor of the language model's log-probabilities in fusion: a token the
    /// model finds less likely than this is not penalised further (an unseen word costs
    /// `lm_weight * lm_floor` whatever it is, and the recognizer decides between such words).
    pub lm_floor: f32,
    /// Beam width used when recognizing with the model.
    pub beam_size: u32,
    /// Whether to give Whisper the biasing prompt: 0 = off, otherwise at most this many of its
    /// tokens (the last ones).
    pub prompt_tokens: u32,
    /// Logit bonus for each token that starts a domain word or continues the one being
    /// spelled (word-level biasing, see `bias.rs`); 0 turns it off. Artifacts of format 1
    /// have none.
    pub word_bonus: f32,
}

impl Default for AdaptParams {
    fn default() -> Self {
        Self {
            order: 4,
            lm_weight: 0.8,
            lm_floor: -6.0,
            beam_size: 5,
            // The prompt is off by default: on half A it did not help (12.3 % against 11.5 %).
            prompt_tokens: 0,
            // Chosen on half A of the biology set: 0 → 11.5 %, 2 → 8.1 %, 3 worse than 2.
            word_bonus: 2.0,
        }
    }
}

/// Token budget of the prompt chosen at training (Whisper keeps at most 224 prompt tokens).
const PROMPT_BUDGET: usize = 150;
/// Words shorter than this never go into the prompt.
const PROMPT_MIN_CHARS: usize = 5;
/// A word goes into the prompt if Whisper's vocabulary needs at least this many tokens for it.
const PROMPT_MIN_TOKENS: usize = 3;

/// A language-adapted recognition model (see the module documentation).
#[derive(Debug, Clone)]
pub struct AdaptedModel {
    base_model: String,
    base_sha256: String,
    n_vocab: u32,
    sot: u32,
    eot: u32,
    params: AdaptParams,
    prompt: String,
    prompt_tokens: Vec<u32>,
    /// `(display, spoken)` pairs.
    pronunciations: Vec<(String, String)>,
    /// Punctuation-only text tokens, sorted.
    punctuation: Vec<u32>,
    /// `is_punct[t]` for every token (derived from `punctuation`).
    is_punct: Vec<bool>,
    lm: NgramLm,
    /// The domain words, for the word bonus.
    bias: BiasTrie,
}

/// Lines of a Language data file: BOM and blank lines dropped, whitespace collapsed.
fn lines(text: &str) -> impl Iterator<Item = String> + '_ {
    text.trim_start_matches('\u{feff}')
        .lines()
        .map(|l| {
            l.trim_start_matches('\u{feff}')
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|l| !l.is_empty())
}

/// `line` as Whisper would start a sentence: first letter upper-case.
pub(crate) fn as_sentence(line: &str) -> String {
    let mut chars = line.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `line` with every word capitalised, as Whisper often writes names ("Panthera Tigris").
fn title_case(line: &str) -> String {
    line.split(' ')
        .map(as_sentence)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a token is sentence punctuation only (no letter or digit, not blank): such tokens
/// are transparent to the n-gram model (see [`fusion`]). Hyphens and apostrophes build words
/// ("Pan-thera", "Link's"), so the n-gram model scores them like any other piece of a word.
fn is_punctuation(bytes: &[u8]) -> bool {
    let s = String::from_utf8_lossy(bytes);
    !s.trim().is_empty()
        && !s
            .chars()
            .any(|c| c.is_alphanumeric() || c == '-' || c == '\'')
}

impl AdaptedModel {
    /// Trains a model from Language data texts (each a whole file) and Pronunciation pairs
    /// `(display form, spoken form)`, for the recognizer described by `vocab`.
    pub fn train(
        language_texts: &[&str],
        pronunciations: &[(String, String)],
        vocab: &dyn Vocabulary,
    ) -> Result<Self> {
        Self::train_with(
            language_texts,
            pronunciations,
            vocab,
            AdaptParams::default(),
        )
    }

    /// [`AdaptedModel::train`] with explicit parameters.
    pub fn train_with(
        language_texts: &[&str],
        pronunciations: &[(String, String)],
        vocab: &dyn Vocabulary,
        params: AdaptParams,
    ) -> Result<Self> {
        let bad = |reason: String| EngineError::BadModel {
            name: "adapted model".into(),
            reason,
        };
        let (n_vocab, sot, eot) = (vocab.n_vocab(), vocab.sot(), vocab.eot());
        if eot >= n_vocab || sot >= n_vocab || !(1..=8).contains(&params.order) {
            return Err(bad(format!(
                "unusable vocabulary or order (n_vocab {n_vocab}, sot {sot}, eot {eot}, order {})",
                params.order
            )));
        }
        let tokens: Vec<(u32, Vec<u8>)> = (0..eot)
            .filter_map(|id| vocab.token_bytes(id).map(|b| (id, b)))
            .collect();
        let punctuation: Vec<u32> = tokens
            .iter()
            .filter(|(_, b)| is_punctuation(b))
            .map(|&(id, _)| id)
            .collect();
        let bpe = Bpe::new(tokens);
        let mut text_lines: Vec<String> = language_texts.iter().flat_map(|t| lines(t)).collect();
        text_lines.extend(
            pronunciations
                .iter()
                .map(|(display, _)| display.trim().to_string())
                .filter(|d| !d.is_empty()),
        );
        if text_lines.is_empty() {
            return Err(bad("the language data holds no text".into()));
        }
        let mut seqs = Vec::with_capacity(text_lines.len() * 2);
        let is_punct = punct_table(&punctuation, n_vocab);
        for line in &text_lines {
            // Whisper's casing varies where the WER does not care: train on the line as written,
            // sentence-cased and title-cased.
            let mut variants = vec![line.clone(), as_sentence(line), title_case(line)];
            variants.dedup();
            for variant in variants {
                let mut seq = vec![sot];
                seq.extend(
                    bpe.encode(&format!(" {variant}"))
                        .into_iter()
                        .filter(|&t| !is_punct[t as usize]),
                );
                seq.push(eot);
                seqs.push(seq);
            }
        }
        let counts = ngram::count(&seqs, params.order as usize);
        let lm = NgramLm::from_counts(counts, n_vocab as usize, sot);
        let bias = BiasTrie::from_text(&text_lines, &bpe);
        let prompt = select_prompt(&text_lines, &bpe, PROMPT_BUDGET);
        let prompt_tokens = if prompt.is_empty() {
            Vec::new()
        } else {
            bpe.encode(&format!(" {prompt}"))
        };
        Ok(Self {
            base_model: vocab.model_name().to_string(),
            base_sha256: vocab.model_sha256().to_string(),
            n_vocab,
            sot,
            eot,
            params,
            prompt,
            prompt_tokens,
            pronunciations: pronunciations
                .iter()
                .map(|(d, s)| (d.trim().to_string(), s.trim().to_string()))
                .filter(|(d, s)| !d.is_empty() && !s.is_empty())
                .collect(),
            punctuation,
            is_punct,
            lm,
            bias,
        })
    }

    /// The base model this model adapts (its name).
    pub fn base_model(&self) -> &str {
        &self.base_model
    }

    /// sha256 (hex) of the base model file, or empty when unknown.
    pub fn base_sha256(&self) -> &str {
        &self.base_sha256
    }

    /// The parameters.
    pub fn params(&self) -> AdaptParams {
        self.params
    }

    /// Changes the recognition parameters (weight, beam, prompt on/off). The n-gram order and
    /// the prompt's words are fixed at training; `prompt_tokens == 0` disables the prompt.
    pub fn set_params(&mut self, params: AdaptParams) {
        self.params = AdaptParams {
            order: self.params.order,
            ..params
        };
    }

    /// The biasing prompt (domain words), possibly empty.
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// The prompt as tokens, empty when the prompt is disabled.
    pub fn prompt_tokens(&self) -> &[u32] {
        let keep = (self.params.prompt_tokens as usize).min(self.prompt_tokens.len());
        &self.prompt_tokens[self.prompt_tokens.len() - keep..]
    }

    /// The domain words of the word bonus, each as the base model's tokens (with its leading
    /// space), sorted.
    pub fn bias_words(&self) -> &[Vec<u32>] {
        self.bias.words()
    }

    /// The n-gram language model.
    pub fn lm(&self) -> &NgramLm {
        &self.lm
    }

    /// The vocabulary size the model was trained for.
    pub fn n_vocab(&self) -> u32 {
        self.n_vocab
    }

    /// The end-of-text token of the base model.
    pub fn eot(&self) -> u32 {
        self.eot
    }

    /// Replaces spoken forms from the Pronunciation data with their display forms
    /// (case-insensitive, whole words, longest spoken form first).
    pub fn apply_display_forms(&self, text: &str) -> String {
        if self.pronunciations.is_empty() {
            return text.to_string();
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let key = |w: &str| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
        };
        let mut pairs: Vec<(Vec<String>, &str)> = self
            .pronunciations
            .iter()
            .map(|(d, s)| (s.split_whitespace().map(key).collect(), d.as_str()))
            .filter(|(s, _): &(Vec<String>, &str)| !s.is_empty())
            .collect();
        pairs.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        let mut out: Vec<String> = Vec::with_capacity(words.len());
        let mut i = 0;
        'words: while i < words.len() {
            for (spoken, display) in &pairs {
                let n = spoken.len();
                if i + n <= words.len()
                    && words[i..i + n]
                        .iter()
                        .zip(spoken)
                        .all(|(w, s)| key(w) == *s)
                {
                    // Keep the punctuation that followed the last spoken word.
                    let last = words[i + n - 1];
                    let tail_len =
                        last.len() - last.trim_end_matches(|c: char| !c.is_alphanumeric()).len();
                    out.push(format!("{display}{}", &last[last.len() - tail_len..]));
                    i += n;
                    continue 'words;
                }
            }
            out.push(words[i].to_string());
            i += 1;
        }
        out.join(" ")
    }
}

/// A dense `is punctuation` table over the vocabulary.
fn punct_table(punctuation: &[u32], n_vocab: u32) -> Vec<bool> {
    let mut t = vec![false; n_vocab as usize];
    for &p in punctuation {
        if let Some(x) = t.get_mut(p as usize) {
            *x = true;
        }
    }
    t
}

/// The prompt: the language data's words that Whisper's vocabulary splits into the most pieces
/// (its rarest words for this model), in order of first appearance, within `budget` tokens.
fn select_prompt(lines: &[String], bpe: &Bpe, budget: usize) -> String {
    if budget == 0 {
        return String::new();
    }
    let mut seen = std::collections::HashSet::new();
    let mut candidates: Vec<(usize, usize, &str)> = Vec::new(); // (tokens, position, word)
    for word in lines.iter().flat_map(|l| l.split_whitespace()) {
        let word = word.trim_matches(|c: char| !c.is_alphanumeric());
        if word.chars().count() < PROMPT_MIN_CHARS || !word.chars().all(char::is_alphabetic) {
            continue;
        }
        if !seen.insert(word.to_lowercase()) {
            continue;
        }
        let n = bpe.encode(&format!(" {word}")).len();
        if n >= PROMPT_MIN_TOKENS {
            candidates.push((n, candidates.len(), word));
        }
    }
    // Rarest first (most pieces), ties by first appearance; then back to text order.
    candidates.sort_by_key(|&(n, pos, _)| (std::cmp::Reverse(n), pos));
    let mut used = 0;
    let mut chosen = Vec::new();
    for (n, pos, word) in candidates {
        let cost = n + 1; // the separator (or the final period)
        if used + cost > budget {
            continue;
        }
        used += cost;
        chosen.push((pos, word));
    }
    chosen.sort_unstable();
    if chosen.is_empty() {
        return String::new();
    }
    let words: Vec<&str> = chosen.into_iter().map(|(_, w)| w).collect();
    format!("{}.", words.join(", "))
}
