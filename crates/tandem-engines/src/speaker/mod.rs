//! Speaker embeddings ("voice signatures") for speaker verification and identification.
//!
//! The model is Resemblyzer's GE2E d-vector encoder (a 3-layer LSTM trained with the
//! generalised end-to-end loss), whose weights ship as `resemblyzer/pretrained.pt` in the PyPI
//! wheel `resemblyzer==0.1.4` ([`crate::models::SPEAKER_GE2E`]). Everything runs here, in plain
//! Rust on the CPU:
//!
//! - [`torch_legacy`]: a minimal pickle machine and reader for the legacy torch file format;
//! - [`frontend`]: resampling to 16 kHz, volume normalisation, silence removal, the 40-band mel
//!   power spectrogram and the 1.6 s partial windows;
//! - [`lstm`]: the network;
//! - [`SpeakerEncoder`]: the three together. [`SpeakerEncoder::embed`] gives an [`Embedding`];
//!   two embeddings are the same speaker when their [`Embedding::cosine`] is at least
//!   [`THRESHOLD`].

pub mod frontend;
pub mod lstm;
mod model;
pub mod passphrase;
mod pickle;
pub mod torch_legacy;

pub use frontend::voiced_seconds;
pub use model::SpeakerEncoder;

/// Less voiced speech than this (after silence removal) is refused with
/// [`crate::EngineError::TooShort`], seconds.
pub const MIN_VOICED_SECS: f64 = 0.5;

/// The accept threshold on [`Embedding::cosine`]: at or above it, two recordings are taken to be
/// the same speaker.
///
/// Measured with `tests/speaker_eval.rs` (`cargo test --release -p tandem-engines --test
/// speaker_eval -- --nocapture`):
/// - real voices (the 9 speakers of the Speech SDK samples, each phrase cut at the middle of
///   its speech; first half against every second half: 9 same-speaker and 72 different-speaker
///   trials): same speaker mean 0.824, min 0.774; different mean 0.503, max 0.726. EER 0 %
///   (threshold at EER 0.750).
/// - synthetic voices (flite slt, rms, awb, kal16 and espeak-ng en-GB male and female; 10
///   Harvard sentences each, enrolment on the average of 5, tests on the other 5 one by one: 30
///   same-speaker and 150 different-speaker trials): same mean 0.900, min 0.857; different mean
///   0.528, max 0.739. EER 0 % (threshold at EER 0.798).
/// - the union: EER 0 % at 0.756.
///
/// 0.75 is the middle of the gap between real same-speaker and different-speaker scores, and
/// inside the synthetic gap. A higher value (favouring fewer false accepts) would reject real
/// same-speaker halves of about 2 s, the weakest trials here. The sets are tiny: an EER of 0 % on
/// 81 + 180 trials only says the error rate is low, not that it is zero, and the margins are
/// narrow (0.024 on real voices, 0.011 on synthetic ones). Recalibrate on real enrolments when
/// there are more of them.
pub const THRESHOLD: f32 = 0.75;

/// The accept threshold of text-dependent verification: the probe says the profile's
/// passphrase (1–10 s) and the signature is the mean of three or more enrollments of it.
///
/// Measured with `tests/speaker_text_dependent_eval.rs` (`cargo test -p tandem-engines --test
/// speaker_text_dependent_eval -- --nocapture`): the 10 `en-us` passphrases spoken by flite
/// slt, rms, awb, kal16 and espeak-ng en-GB male and female, enrolled at speaking rates 1.0,
/// 0.9 and 1.1, probed at 0.95; every voice's probe against every voice's signature of the
/// same phrase: 57 genuine trials, mean 0.979, min 0.860; 272 impostor trials, mean 0.521,
/// max 0.766 (the top six 0.750–0.766). EER 0 % (threshold at EER 0.813). At 0.75: 4 false
/// accepts of 272; at 0.78: none, and no false reject. The same voice saying another phrase
/// scores 0.857 on average (min 0.722): the voice check alone would pass most of those, which
/// is why the phrase is checked first.
///
/// 0.78 is just above the highest impostor, and below the middle of the gap (0.813) on
/// purpose: synthetic renditions of one phrase are far more alike than a person's repeated
/// recordings (real same-speaker halves of about 2 s score mean 0.824, min 0.774 on the
/// text-independent set, see [`THRESHOLD`]), so a higher value would reject real speakers first. Recalibrate on
/// real passphrase enrolments when there are some.
pub const TEXT_DEPENDENT_THRESHOLD: f32 = 0.78;

/// A voice signature: a unit-norm vector of 256 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(pub Vec<f32>);

impl Embedding {
    /// Cosine similarity, in [-1, 1] (0 if either vector is zero or their sizes differ).
    pub fn cosine(&self, other: &Embedding) -> f32 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        let dot = lstm::dot(&self.0, &other.0);
        let norms = (lstm::dot(&self.0, &self.0) * lstm::dot(&other.0, &other.0)).sqrt();
        if norms > 0.0 {
            (dot / norms).clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }

    /// The renormalised mean of several embeddings of one speaker (an enrolment). Empty input
    /// gives an empty embedding.
    pub fn average(embs: &[Embedding]) -> Embedding {
        let Some(first) = embs.first() else {
            return Embedding(Vec::new());
        };
        let mut sum = vec![0f32; first.0.len()];
        for e in embs {
            sum.iter_mut().zip(&e.0).for_each(|(a, b)| *a += b);
        }
        Embedding(lstm::normalize(sum).unwrap_or_default())
    }
}

/// The equal error rate of a verifier and the threshold where it is reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eer {
    /// The error rate where false accepts and false rejects are (nearly) equal: their mean.
    pub rate: f64,
    /// The threshold (accept when score >= threshold) at that point.
    pub threshold: f32,
}

/// Sweeps the threshold over every observed score and returns the point where the false-accept
/// rate (different-speaker scores >= threshold) and the false-reject rate (same-speaker scores <
/// threshold) are closest. When the two sets do not overlap, the EER is 0 and the threshold is
/// halfway between them. `None` if either set is empty.
pub fn equal_error_rate(same: &[f32], different: &[f32]) -> Option<Eer> {
    if same.is_empty() || different.is_empty() {
        return None;
    }
    let max_diff = different.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let min_same = same.iter().copied().fold(f32::INFINITY, f32::min);
    if min_same > max_diff {
        return Some(Eer {
            rate: 0.0,
            threshold: (min_same + max_diff) / 2.0,
        });
    }
    let mut candidates: Vec<f32> = same.iter().chain(different).copied().collect();
    candidates.sort_by(f32::total_cmp);
    let mut best: Option<(f64, Eer)> = None;
    for &t in &candidates {
        let frr = same.iter().filter(|&&s| s < t).count() as f64 / same.len() as f64;
        let far = different.iter().filter(|&&s| s >= t).count() as f64 / different.len() as f64;
        let gap = (far - frr).abs();
        if best.is_none_or(|(g, _)| gap < g) {
            best = Some((
                gap,
                Eer {
                    rate: (far + frr) / 2.0,
                    threshold: t,
                },
            ));
        }
    }
    best.map(|(_, e)| e)
}

#[cfg(test)]
mod tests;
