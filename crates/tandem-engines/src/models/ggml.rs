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

use super::ct2::{f32_to_f16, DType, Model, Variable};

const GGML_MAGIC: u32 = 0x6767_6d6c;
const SAMPLE_RATE: f64 = 16_000.0;
const N_FFT: usize = 400;

/// Output element type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Out {
    F16,
    F32,
    /// f32, shape `(n, 1)`.
    ConvBias,
}

/// One tensor to write: a row range of a CT2 variable.
struct Job {
    ggml: String,
    ct2: String,
    /// Which part of `parts` equal row blocks.
    part: usize,
    parts: usize,
    out: Out,
}

fn job(ggml: String, ct2: String, out: Out) -> Job {
    Job {
        ggml,
        ct2,
        part: 0,
        parts: 1,
        out,
    }
}

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

fn jobs(n_audio_layer: usize, n_text_layer: usize) -> Vec<Job> {
    let mut jobs = vec![
        job(
            "encoder.positional_embedding".into(),
            "encoder/position_encodings/encodings".into(),
            Out::F32,
        ),
        job(
            "encoder.conv1.weight".into(),
            "encoder/conv1/weight".into(),
            Out::F16,
        ),
        job(
            "encoder.conv1.bias".into(),
            "encoder/conv1/bias".into(),
            Out::ConvBias,
        ),
        job(
            "encoder.conv2.weight".into(),
            "encoder/conv2/weight".into(),
            Out::F16,
        ),
        job(
            "encoder.conv2.bias".into(),
            "encoder/conv2/bias".into(),
            Out::ConvBias,
        ),
        job(
            "encoder.ln_post.weight".into(),
            "encoder/layer_norm/gamma".into(),
            Out::F32,
        ),
        job(
            "encoder.ln_post.bias".into(),
            "encoder/layer_norm/beta".into(),
            Out::F32,
        ),
        job(
            "decoder.positional_embedding".into(),
            "decoder/position_encodings/encodings".into(),
            Out::F32,
        ),
        job(
            "decoder.token_embedding.weight".into(),
            "decoder/embeddings/weight".into(),
            Out::F16,
        ),
        job(
            "decoder.ln.weight".into(),
            "decoder/layer_norm/gamma".into(),
            Out::F32,
        ),
        job(
            "decoder.ln.bias".into(),
            "decoder/layer_norm/beta".into(),
            Out::F32,
        ),
    ];
    // (ct2 sub-path, ggml sub-name) for a layer norm or a plain linear layer
    let norm = |jobs: &mut Vec<Job>, c: &str, g: &str| {
        jobs.push(job(format!("{g}.weight"), format!("{c}/gamma"), Out::F32));
        jobs.push(job(format!("{g}.bias"), format!("{c}/beta"), Out::F32));
    };
    let linear = |jobs: &mut Vec<Job>, c: &str, g: &str| {
        jobs.push(job(format!("{g}.weight"), format!("{c}/weight"), Out::F16));
        jobs.push(job(format!("{g}.bias"), format!("{c}/bias"), Out::F32));
    };
    // A fused linear layer split by rows into `names`; `None` biases are dropped (key bias).
    let split = |jobs: &mut Vec<Job>, c: &str, names: &[(String, bool)]| {
        let parts = names.len();
        for (part, (g, has_bias)) in names.iter().enumerate() {
            jobs.push(Job {
                ggml: format!("{g}.weight"),
                ct2: format!("{c}/weight"),
                part,
                parts,
                out: Out::F16,
            });
            if *has_bias {
                jobs.push(Job {
                    ggml: format!("{g}.bias"),
                    ct2: format!("{c}/bias"),
                    part,
                    parts,
                    out: Out::F32,
                });
            }
        }
    };
    for (side, layers) in [("encoder", n_audio_layer), ("decoder", n_text_layer)] {
        for i in 0..layers {
            let c = format!("{side}/layer_{i}");
            let g = format!("{side}.blocks.{i}");
            norm(
                &mut jobs,
                &format!("{c}/self_attention/layer_norm"),
                &format!("{g}.attn_ln"),
            );
            split(
                &mut jobs,
                &format!("{c}/self_attention/linear_0"),
                &[
                    (format!("{g}.attn.query"), true),
                    (format!("{g}.attn.key"), false),
                    (format!("{g}.attn.value"), true),
                ],
            );
            linear(
                &mut jobs,
                &format!("{c}/self_attention/linear_1"),
                &format!("{g}.attn.out"),
            );
            if side == "decoder" {
                norm(
                    &mut jobs,
                    &format!("{c}/attention/layer_norm"),
                    &format!("{g}.cross_attn_ln"),
                );
                linear(
                    &mut jobs,
                    &format!("{c}/attention/linear_0"),
                    &format!("{g}.cross_attn.query"),
                );
                split(
                    &mut jobs,
                    &format!("{c}/attention/linear_1"),
                    &[
                        (format!("{g}.cross_attn.key"), false),
                        (format!("{g}.cross_attn.value"), true),
                    ],
                );
                linear(
                    &mut jobs,
                    &format!("{c}/attention/linear_2"),
                    &format!("{g}.cross_attn.out"),
                );
            }
            norm(
                &mut jobs,
                &format!("{c}/ffn/layer_norm"),
                &format!("{g}.mlp_ln"),
            );
            linear(
                &mut jobs,
                &format!("{c}/ffn/linear_0"),
                &format!("{g}.mlp.0"),
            );
            linear(
                &mut jobs,
                &format!("{c}/ffn/linear_1"),
                &format!("{g}.mlp.2"),
            );
        }
    }
    jobs
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend(v.to_le_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: usize) -> Result<(), String> {
    let v = i32::try_from(v).map_err(|_| format!("{v} does not fit in an i32"))?;
    out.extend(v.to_le_bytes());
    Ok(())
}

fn write_tensor(out: &mut Vec<u8>, j: &Job, v: &Variable<'_>) -> Result<(), String> {
    if v.shape.is_empty() {
        return Err(format!("{} is a scalar", j.ct2));
    }
    if !matches!(v.dtype, DType::F32 | DType::F16 | DType::BF16) {
        return Err(format!("{} is not floating point", j.ct2));
    }
    let rows = v.shape[0];
    if (rows / j.parts) * j.parts != rows {
        return Err(format!(
            "{} has {rows} rows, not divisible by {}",
            j.ct2, j.parts
        ));
    }
    let part_rows = rows / j.parts;
    let row_elems: usize = v.shape[1..].iter().product();
    let elem = v.dtype.size();
    let start = j.part * part_rows * row_elems * elem;
    let end = start + part_rows * row_elems * elem;
    let part = Variable {
        shape: std::iter::once(part_rows)
            .chain(v.shape[1..].iter().copied())
            .collect(),
        dtype: v.dtype,
        data: v
            .data
            .get(start..end)
            .ok_or_else(|| format!("{} is too short", j.ct2))?,
    };
    let mut shape = part.shape.clone();
    if j.out == Out::ConvBias {
        if shape.len() != 1 {
            return Err(format!("{} is not 1-D", j.ct2));
        }
        shape.push(1);
    }
    let f16 = j.out == Out::F16;
    put_i32(out, shape.len())?;
    put_i32(out, j.ggml.len())?;
    put_i32(out, usize::from(f16))?;
    for &d in shape.iter().rev() {
        put_i32(out, d)?;
    }
    out.extend(j.ggml.as_bytes());
    if f16 && part.dtype == DType::F16 {
        out.extend(part.data);
    } else {
        let values = part
            .to_f32()
            .ok_or_else(|| format!("{} is not floating point", j.ct2))?;
        if f16 {
            for x in values {
                out.extend(f32_to_f16(x).to_le_bytes());
            }
        } else {
            for x in values {
                out.extend(x.to_le_bytes());
            }
        }
    }
    Ok(())
}

/// GPT-2's byte-to-unicode table, inverted: the byte that each printable character stands for.
fn unicode_to_byte() -> std::collections::HashMap<char, u8> {
    let mut map = std::collections::HashMap::with_capacity(256);
    let mut n = 0u32;
    for b in 0..=255u8 {
        let printable = (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
        let c = if printable {
            char::from(b)
        } else {
            let c = char::from_u32(256 + n).unwrap_or('\u{fffd}');
            n += 1;
            c
        };
        map.insert(c, b);
    }
    map
}

/// The raw bytes of the vocabulary's tokens below `<|endoftext|>`.
fn vocabulary_bytes(vocabulary: &str, n_vocab: usize) -> Result<Vec<Vec<u8>>, String> {
    let map = unicode_to_byte();
    let mut tokens = Vec::new();
    for line in vocabulary.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "<|endoftext|>" {
            if tokens.len() > n_vocab {
                return Err("the vocabulary is larger than the embeddings".into());
            }
            return Ok(tokens);
        }
        let bytes = line
            .chars()
            .map(|c| map.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| {
                format!(
                    "vocabulary token {} ({line:?}) is not byte-level BPE",
                    tokens.len()
                )
            })?;
        tokens.push(bytes);
    }
    Err("the vocabulary has no <|endoftext|> token".into())
}

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let logstep = 6.4f64.ln() / 27.0;
    if f < 1000.0 {
        f / f_sp
    } else {
        1000.0 / f_sp + (f / 1000.0).ln() / logstep
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let logstep = 6.4f64.ln() / 27.0;
    let min_log_mel = 1000.0 / f_sp;
    if m < min_log_mel {
        m * f_sp
    } else {
        1000.0 * (logstep * (m - min_log_mel)).exp()
    }
}

/// The Slaney-style mel filterbank that Whisper was trained with (librosa's
/// `filters.mel(sr=16000, n_fft=400, n_mels)`: Slaney mel scale, area-normalised triangles),
/// `n_mels x 201`, row-major.
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let n_bins = N_FFT / 2 + 1;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|k| k as f64 * SAMPLE_RATE / N_FFT as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2.0));
    let n_pts = n_mels + 2;
    let mel_f: Vec<f64> = (0..n_pts)
        .map(|i| {
            let m = if i == n_pts - 1 {
                hi
            } else {
                lo + (hi - lo) * i as f64 / (n_pts - 1) as f64
            };
            mel_to_hz(m)
        })
        .collect();
    let mut out = Vec::with_capacity(n_mels * n_bins);
    for i in 0..n_mels {
        let enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        for &f in &fft_freqs {
            let lower = (f - mel_f[i]) / (mel_f[i + 1] - mel_f[i]);
            let upper = (mel_f[i + 2] - f) / (mel_f[i + 2] - mel_f[i + 1]);
            out.push((lower.min(upper).max(0.0) * enorm) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::ct2;
    use super::*;

    #[test]
    fn mel_filters_look_like_librosa() {
        let f = mel_filters(80);
        assert_eq!(f.len(), 80 * 201);
        // Every filter is a non-empty triangle; the filterbank covers 0..8 kHz.
        for row in f.chunks(201) {
            assert!(row.iter().any(|&x| x > 0.0));
            assert!(row.iter().all(|&x| x >= 0.0));
        }
        // librosa: first filter peaks at bin 1 with 0.02486259
        assert!((f[1] - 0.024_862_59).abs() < 1e-6, "{}", f[1]);
        assert_eq!(f[0], 0.0);
    }

    #[test]
    fn byte_level_vocab_decodes() {
        let v = "!\nĠthe\nĊ\n<|endoftext|>\n<|startoftranscript|>\n";
        let t = vocabulary_bytes(v, 10).unwrap();
        assert_eq!(t, vec![b"!".to_vec(), b" the".to_vec(), b"\n".to_vec()]);
        assert!(vocabulary_bytes("a\nb\n", 10).is_err());
    }

    fn f16s(n: usize, base: f32) -> Vec<u8> {
        (0..n)
            .flat_map(|i| ct2::f32_to_f16(base + i as f32).to_le_bytes())
            .collect()
    }

    /// A tiny one-layer Whisper in CT2 form (d=2, 1 head, vocab 4, 2 mels).
    fn tiny_model() -> Vec<u8> {
        let d = 2u32;
        let mut vars: Vec<(String, Vec<u32>, u8, Vec<u8>)> = vec![
            (
                "encoder/num_heads".into(),
                vec![],
                2,
                1i16.to_le_bytes().to_vec(),
            ),
            (
                "decoder/num_heads".into(),
                vec![],
                2,
                1i16.to_le_bytes().to_vec(),
            ),
            (
                "decoder/embeddings/weight".into(),
                vec![4, d],
                4,
                f16s(8, 0.0),
            ),
            (
                "encoder/position_encodings/encodings".into(),
                vec![3, d],
                4,
                f16s(6, 0.0),
            ),
            (
                "decoder/position_encodings/encodings".into(),
                vec![5, d],
                4,
                f16s(10, 0.0),
            ),
            (
                "encoder/conv1/weight".into(),
                vec![d, 2, 3],
                4,
                f16s(12, 0.0),
            ),
            ("encoder/conv1/bias".into(), vec![d], 4, f16s(2, 0.0)),
            (
                "encoder/conv2/weight".into(),
                vec![d, d, 3],
                4,
                f16s(12, 0.0),
            ),
            ("encoder/conv2/bias".into(), vec![d], 4, f16s(2, 0.0)),
        ];
        for side in ["encoder", "decoder"] {
            for n in ["layer_norm/gamma", "layer_norm/beta"] {
                vars.push((format!("{side}/{n}"), vec![d], 4, f16s(2, 0.0)));
            }
            let l = format!("{side}/layer_0");
            let mut lin = |name: &str, rows: u32| {
                vars.push((
                    format!("{l}/{name}/weight"),
                    vec![rows, d],
                    4,
                    f16s((rows * d) as usize, 10.0),
                ));
                vars.push((
                    format!("{l}/{name}/bias"),
                    vec![rows],
                    4,
                    f16s(rows as usize, 100.0),
                ));
            };
            lin("self_attention/linear_0", 3 * d);
            lin("self_attention/linear_1", d);
            lin("ffn/linear_0", 4 * d);
            lin("ffn/linear_1", d);
            if side == "decoder" {
                lin("attention/linear_0", d);
                lin("attention/linear_1", 2 * d);
                lin("attention/linear_2", d);
            }
            let mut norms = vec!["self_attention/layer_norm", "ffn/layer_norm"];
            if side == "decoder" {
                norms.push("attention/layer_norm");
            }
            for n in norms {
                vars.push((format!("{l}/{n}/gamma"), vec![d], 4, f16s(2, 1.0)));
                vars.push((format!("{l}/{n}/beta"), vec![d], 4, f16s(2, 0.0)));
            }
        }
        let refs: Vec<(&str, Vec<u32>, u8, Vec<u8>)> = vars
            .iter()
            .map(|(a, b, c, e)| (a.as_str(), b.clone(), *c, e.clone()))
            .collect();
        ct2::tests::build(
            &refs,
            &[("decoder/projection/weight", "decoder/embeddings/weight")],
        )
    }

    #[test]
    fn converts_a_tiny_model() {
        let bytes = tiny_model();
        let m = ct2::parse(&bytes).unwrap();
        let mut calls = 0;
        let out = convert(&m, "a\nb\n<|endoftext|>\n<|x|>\n", &mut |_, _| calls += 1).unwrap();
        assert_eq!(&out[..4], &0x6767_6d6cu32.to_le_bytes());
        let i32_at = |i: usize| i32::from_le_bytes(out[4 + 4 * i..8 + 4 * i].try_into().unwrap());
        let hp: Vec<i32> = (0..11).map(i32_at).collect();
        assert_eq!(hp, vec![4, 3, 2, 1, 1, 5, 2, 1, 1, 2, 1]);
        assert_eq!(i32_at(11), 2); // n_mel
        assert_eq!(i32_at(12), 201);
        // 11 globals + encoder layer (2+5+2+2+4=15) + decoder layer (15+2+2+3+2=24)
        assert_eq!(calls, 11 + 15 + 24);
        // deterministic
        let again = convert(&m, "a\nb\n<|endoftext|>\n", &mut |_, _| {}).unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn missing_variables_are_errors() {
        let bytes = ct2::tests::build(&[("decoder/num_heads", vec![], 2, vec![6, 0])], &[]);
        let m = ct2::parse(&bytes).unwrap();
        assert!(convert(&m, "<|endoftext|>", &mut |_, _| {}).is_err());
    }
}
