//! Writer of whisper.cpp's legacy ggml model format, from a parsed CT2 Whisper model.
//!
//! Layout (all little-endian): magic `0x67676d6c`; 11 `i32` hparams (`n_vocab, n_audio_ctx,
//! n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head,
//! n_text_layer, n_mels, ftype`); the mel filterbank (`i32 n_mel, i32 n_fft`, then
//! `n_mel * n_fft` f32); the vocabulary (`i32 count`, then per token `u32 len` + raw bytes) for
//! the ids below `<|endoftext|>` (whisper.cpp adds the special tokens itself); then tensors, each
//! `i32 n_dims, i32 name_len, i32 ttype (0 f32, 1 f16), i32 ne[n_dims]` (the shape reversed,
//! innermost first), the name and the data. 2-D and 3-D weights are f16; 1-D tensors, conv
//! biases (stored as `(n, 1)`) and positional embeddings are f32.
//!
//! The CT2 → whisper.cpp name mapping (see `engines.md` §3.3): the fused self-attention QKV
//! (`linear_0`, `3d x d`) is split by rows into `attn.{query,key,value}` and the fused
//! cross-attention KV (`attention/linear_1`, `2d x d`) into `cross_attn.{key,value}`. whisper.cpp
//! has no key bias; CT2 stores it as zeros, and a constant key bias would not change attention
//! anyway (softmax is shift-invariant per query), so it is dropped. The output projection is tied
//! to the token embedding (CT2 alias `decoder/projection/weight`).

mod mel;
mod tensors;
#[cfg(test)]
mod tests;
mod vocab;

pub use mel::mel_filters;

use super::ct2::Model;
use tensors::{jobs, write_tensor};
use vocab::vocabulary_bytes;

const GGML_MAGIC: u32 = 0x6767_6d6c;
const SAMPLE_RATE: f64 = 16_000.0;
const N_FFT: usize = 400;

/// Converts a CT2 Whisper model with its `vocabulary.txt` to a ggml file in memory.
/// `progress(done, total)` is called after each tensor.
pub fn convert(
    m: &Model<'_>,
    vocabulary: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<u8>, String> {
    if m.spec != "WhisperSpec" {
        return Err(format!("not a Whisper model (spec {:?})", m.spec));
    }
    let var = |name: &str| {
        m.get(name)
            .ok_or_else(|| format!("variable {name} is missing"))
    };
    let shape2 = |name: &str| -> Result<(usize, usize), String> {
        let v = var(name)?;
        match v.shape[..] {
            [a, b] => Ok((a, b)),
            _ => Err(format!("{name} has shape {:?}, expected 2-D", v.shape)),
        }
    };
    let (n_vocab, n_text_state) = shape2("decoder/embeddings/weight")?;
    let (n_audio_ctx, n_audio_state) = shape2("encoder/position_encodings/encodings")?;
    let (n_text_ctx, pos_state) = shape2("decoder/position_encodings/encodings")?;
    if pos_state != n_text_state {
        return Err("decoder position encodings do not match the embeddings".into());
    }
    let conv1 = var("encoder/conv1/weight")?;
    let n_mels = match conv1.shape[..] {
        [out, mels, 3] if out == n_audio_state => mels,
        _ => return Err(format!("encoder/conv1/weight has shape {:?}", conv1.shape)),
    };
    let heads = |name: &str| -> Result<usize, String> {
        var(name)?
            .as_int()
            .filter(|&h| h > 0)
            .map(|h| h as usize)
            .ok_or_else(|| format!("{name} is not a positive integer"))
    };
    let n_audio_head = heads("encoder/num_heads")?;
    let n_text_head = heads("decoder/num_heads")?;
    let count_layers = |prefix: &str| {
        (0..)
            .take_while(|i| {
                m.variables.contains_key(&format!(
                    "{prefix}/layer_{i}/self_attention/linear_0/weight"
                ))
            })
            .count()
    };
    let n_audio_layer = count_layers("encoder");
    let n_text_layer = count_layers("decoder");
    if n_audio_layer == 0 || n_text_layer == 0 {
        return Err("the model has no layers".into());
    }
    if let Some(proj) = m.variables.get("decoder/projection/weight") {
        let emb = var("decoder/embeddings/weight")?;
        if proj.data != emb.data {
            return Err("an untied output projection is not supported by whisper.cpp".into());
        }
    }

    let hparams = [
        n_vocab,
        n_audio_ctx,
        n_audio_state,
        n_audio_head,
        n_audio_layer,
        n_text_ctx,
        n_text_state,
        n_text_head,
        n_text_layer,
        n_mels,
        1, // ftype: mostly f16
    ];

    let tokens = vocabulary_bytes(vocabulary, n_vocab)?;
    let jobs = jobs(n_audio_layer, n_text_layer);

    let mut out =
        Vec::with_capacity(m.variables.values().map(|v| v.data.len()).sum::<usize>() + (8 << 20));
    put_u32(&mut out, GGML_MAGIC);
    for h in hparams {
        put_i32(&mut out, h)?;
    }
    let filters = mel_filters(n_mels);
    put_i32(&mut out, n_mels)?;
    put_i32(&mut out, N_FFT / 2 + 1)?;
    for f in filters {
        out.extend(f.to_le_bytes());
    }
    put_i32(&mut out, tokens.len())?;
    for t in &tokens {
        put_u32(
            &mut out,
            u32::try_from(t.len()).map_err(|_| "token too long")?,
        );
        out.extend(t);
    }
    let total = jobs.len();
    for (i, j) in jobs.iter().enumerate() {
        write_tensor(&mut out, j, var(&j.ct2)?)?;
        progress(i + 1, total);
    }
    Ok(out)
}

pub(super) fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend(v.to_le_bytes());
}

pub(super) fn put_i32(out: &mut Vec<u8>, v: usize) -> Result<(), String> {
    let v = i32::try_from(v).map_err(|_| format!("{v} does not fit in an i32"))?;
    out.extend(v.to_le_bytes());
    Ok(())
}
