use super::*;

/// Builds a CT2 file from (name, shape, dtype code, data) and aliases.
pub(crate) fn build(vars: &[(&str, Vec<u32>, u8, Vec<u8>)], aliases: &[(&str, &str)]) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, s: &str) {
        out.extend(((s.len() + 1) as u16).to_le_bytes());
        out.extend(s.as_bytes());
        out.push(0);
    }
    let mut out = Vec::new();
    out.extend(6u32.to_le_bytes());
    string(&mut out, "WhisperSpec");
    out.extend(3u32.to_le_bytes());
    out.extend((vars.len() as u32).to_le_bytes());
    for (name, shape, code, data) in vars {
        string(&mut out, name);
        out.push(shape.len() as u8);
        for d in shape {
            out.extend(d.to_le_bytes());
        }
        out.push(*code);
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
    }
    out.extend((aliases.len() as u32).to_le_bytes());
    for (a, t) in aliases {
        string(&mut out, a);
        string(&mut out, t);
    }
    out
}

fn sample() -> Vec<u8> {
    let w: Vec<u8> = [1.0f32, -2.0, 0.5, 3.0]
        .iter()
        .flat_map(|v| f32_to_f16(*v).to_le_bytes())
        .collect();
    build(
        &[
            ("decoder/num_heads", vec![], 2, 6i16.to_le_bytes().to_vec()),
            ("decoder/embeddings/weight", vec![2, 2], 4, w),
            (
                "encoder/bias",
                vec![2],
                0,
                [1.5f32, 2.5].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ],
        &[("decoder/projection/weight", "decoder/embeddings/weight")],
    )
}

#[test]
fn parses_a_synthetic_file() {
    let bytes = sample();
    let m = parse(&bytes).unwrap();
    assert_eq!(m.spec, "WhisperSpec");
    assert_eq!(m.spec_revision, 3);
    assert_eq!(m.variables.len(), 3);
    assert_eq!(m.get("decoder/num_heads").unwrap().as_int(), Some(6));
    let w = m.get("decoder/projection/weight").unwrap();
    assert_eq!(w.shape, vec![2, 2]);
    assert_eq!(w.to_f32().unwrap(), vec![1.0, -2.0, 0.5, 3.0]);
    assert_eq!(
        m.get("encoder/bias").unwrap().to_f32().unwrap(),
        vec![1.5, 2.5]
    );
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = sample();
    for n in 0..bytes.len() {
        assert!(parse(&bytes[..n]).is_err(), "prefix of {n} bytes parsed");
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(parse(&extra).is_err());
}

#[test]
fn garbage_is_an_error_not_a_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let bytes = sample();
    for _ in 0..2000 {
        let mut b = bytes.clone();
        for _ in 0..4 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let i = (seed as usize) % b.len();
            b[i] = (seed >> 32) as u8;
        }
        let _ = parse(&b);
    }
    let mut g = Vec::new();
    for _ in 0..4096 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        g.push(seed as u8);
    }
    assert!(parse(&g).is_err());
    let mut bad_version = bytes.clone();
    bad_version[0] = 5;
    assert!(parse(&bad_version).unwrap_err().contains("version"));
}

#[test]
fn half_floats_round_trip() {
    for h in 0..=u16::MAX {
        let f = f16_to_f32(h);
        if f.is_nan() {
            continue;
        }
        assert_eq!(f32_to_f16(f), h, "{h:#x} -> {f}");
    }
    assert_eq!(f32_to_f16(1.0 + 1.0 / 4096.0), 0x3c00); // ties to even
    assert_eq!(f32_to_f16(65520.0), 0x7c00);
}
