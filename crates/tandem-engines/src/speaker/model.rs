//! [`SpeakerEncoder`]: the weights of `pretrained.pt` in the [`Network`], behind the front end.

use std::path::Path;

use tandem_audio::Pcm;

use super::frontend::{
    partial_starts, preprocess, MelSpectrogram, N_MELS, PARTIAL_FRAMES, SAMPLE_RATE,
};
use super::lstm::{normalize, LstmLayer, Network, HIDDEN};
use super::torch_legacy::{read_state_dict, Tensor};
use super::{Embedding, MIN_VOICED_SECS};
use crate::models::SPEAKER_GE2E;
use crate::{EngineError, Result};

/// The Resemblyzer GE2E speaker encoder. Immutable once loaded, so one instance can serve every
/// thread.
pub struct SpeakerEncoder {
    net: Network,
    mel: MelSpectrogram,
}

fn bad(reason: impl Into<String>) -> EngineError {
    EngineError::BadModel {
        name: SPEAKER_GE2E.to_string(),
        reason: reason.into(),
    }
}

impl SpeakerEncoder {
    /// Loads `pretrained.pt` (see [`crate::models::SPEAKER_GE2E`]). A file that is not a legacy
    /// torch checkpoint with the expected tensors is [`EngineError::BadModel`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path)
            .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
        Self::from_bytes(&bytes)
    }

    /// Like [`SpeakerEncoder::load`], from the file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut tensors = read_state_dict(bytes).map_err(bad)?;
        let mut take = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let Tensor { shape: got, data } = tensors
                .remove(name)
                .ok_or_else(|| bad(format!("tensor {name} is missing")))?;
            if got != shape {
                return Err(bad(format!(
                    "tensor {name} has shape {got:?}, expected {shape:?}"
                )));
            }
            if data.iter().any(|x| !x.is_finite()) {
                return Err(bad(format!("tensor {name} holds non-finite values")));
            }
            Ok(data)
        };
        let mut layers = Vec::with_capacity(3);
        for l in 0..3 {
            let input = if l == 0 { N_MELS } else { HIDDEN };
            let w_ih = take(&format!("lstm.weight_ih_l{l}"), &[4 * HIDDEN, input])?;
            let w_hh = take(&format!("lstm.weight_hh_l{l}"), &[4 * HIDDEN, HIDDEN])?;
            let b_ih = take(&format!("lstm.bias_ih_l{l}"), &[4 * HIDDEN])?;
            let b_hh = take(&format!("lstm.bias_hh_l{l}"), &[4 * HIDDEN])?;
            let bias = b_ih.iter().zip(&b_hh).map(|(a, b)| a + b).collect();
            layers.push(LstmLayer {
                input,
                w_ih,
                w_hh,
                bias,
            });
        }
        let linear_w = take("linear.weight", &[HIDDEN, HIDDEN])?;
        let linear_b = take("linear.bias", &[HIDDEN])?;
        Ok(Self {
            net: Network {
                layers,
                linear_w,
                linear_b,
            },
            mel: MelSpectrogram::new(),
        })
    }

    /// The voice signature of `pcm` (any sample rate): the average of the embeddings of 1.6 s
    /// windows over its speech, renormalised. [`EngineError::TooShort`] if less than
    /// [`MIN_VOICED_SECS`] of speech is left once silence is removed.
    pub fn embed(&self, pcm: &Pcm) -> Result<Embedding> {
        let mut wav = preprocess(pcm);
        let voiced_secs = wav.len() as f64 / f64::from(SAMPLE_RATE);
        if voiced_secs < MIN_VOICED_SECS {
            return Err(EngineError::TooShort {
                voiced_secs,
                min_secs: MIN_VOICED_SECS,
            });
        }
        let (starts, padded) = partial_starts(wav.len());
        wav.resize(padded, 0.0);
        let mels = self.mel.compute(&wav);
        let mut sum = vec![0f32; HIDDEN];
        for &s in &starts {
            let window = mels
                .get(s..s + PARTIAL_FRAMES)
                .ok_or_else(|| EngineError::Engine("partial window past the spectrogram".into()))?;
            let flat: Vec<f32> = window.iter().flatten().copied().collect();
            // A window whose ReLU output is all zero carries no direction: skip it.
            if let Some(e) = self.net.forward(&flat) {
                sum.iter_mut().zip(&e).for_each(|(a, b)| *a += b);
            }
        }
        normalize(sum)
            .map(Embedding)
            .ok_or_else(|| EngineError::Engine("the speaker embedding is zero".into()))
    }
}

impl std::fmt::Debug for SpeakerEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerEncoder").finish_non_exhaustive()
    }
}
