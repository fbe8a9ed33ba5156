use super::*;
use crate::EngineError;

#[test]
fn eer_of_separated_scores_is_zero_with_a_threshold_between() {
    let e = equal_error_rate(&[0.9, 0.8, 0.85], &[0.1, 0.5, 0.6]).unwrap();
    assert_eq!(e.rate, 0.0);
    assert!((e.threshold - 0.7).abs() < 1e-6);
}

#[test]
fn eer_of_overlapping_scores() {
    // Same: 10 scores 0.55..1.0; different: 10 scores 0.0..0.6 (step 0.05 / 0.0667).
    let same: Vec<f32> = (0..10).map(|i| 0.55 + 0.05 * i as f32).collect();
    let diff: Vec<f32> = (0..10).map(|i| 0.6 * i as f32 / 9.0).collect();
    let e = equal_error_rate(&same, &diff).unwrap();
    // At t = 0.6: FRR 1/10 (0.55), FAR 1/10 (0.6) -> EER 10 %.
    assert!((e.rate - 0.1).abs() < 1e-9, "{e:?}");
    assert!((e.threshold - 0.6).abs() < 1e-6, "{e:?}");
    // Identical distributions: EER about 50 %.
    let e = equal_error_rate(&diff, &diff).unwrap();
    assert!((e.rate - 0.5).abs() <= 0.05, "{e:?}");
    assert!(equal_error_rate(&[], &diff).is_none());
}

#[test]
fn cosine_and_average() {
    let a = Embedding(vec![1.0, 0.0]);
    let b = Embedding(vec![0.0, 1.0]);
    assert_eq!(a.cosine(&a), 1.0);
    assert_eq!(a.cosine(&b), 0.0);
    assert_eq!(a.cosine(&Embedding(vec![1.0])), 0.0);
    let m = Embedding::average(&[a.clone(), b.clone()]);
    assert!((m.0[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    assert!((m.cosine(&a) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    assert!(Embedding::average(&[]).0.is_empty());
}

#[test]
fn garbage_model_is_bad_model() {
    for input in [&b""[..], b"PK\x03\x04 not a torch file", &[0x80; 40][..]] {
        let err = SpeakerEncoder::from_bytes(input).unwrap_err();
        assert!(matches!(err, EngineError::BadModel { .. }), "{err}");
    }
}
