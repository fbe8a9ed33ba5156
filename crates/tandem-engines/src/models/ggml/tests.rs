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
