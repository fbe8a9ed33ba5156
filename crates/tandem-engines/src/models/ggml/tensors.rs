//! The tensors to write, in order, with their CT2 sources, and how each one is written.

use super::put_i32;
use crate::models::ct2::{f32_to_f16, DType, Variable};

/// Output element type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Out {
    F16,
    F32,
    /// f32, shape `(n, 1)`.
    ConvBias,
}

/// One tensor to write: a row range of a CT2 variable.
pub(super) struct Job {
    ggml: String,
    pub(super) ct2: String,
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

pub(super) fn jobs(n_audio_layer: usize, n_text_layer: usize) -> Vec<Job> {
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

pub(super) fn write_tensor(out: &mut Vec<u8>, j: &Job, v: &Variable<'_>) -> Result<(), String> {
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
