use super::bpe::{pre_tokenize, Bpe};
use super::ngram::{count, NgramLm};
use super::*;

/// A byte-level toy vocabulary: the 256 bytes, then a few merges, then the special tokens.
struct Toy {
    tokens: Vec<Vec<u8>>,
}

impl Toy {
    fn new() -> Self {
        let mut tokens: Vec<Vec<u8>> = (0..=255u8).map(|b| vec![b]).collect();
        for m in [
            " t", "he", " the", " c", "at", " cat", "is", " is", " fel", " felis",
        ] {
            tokens.push(m.as_bytes().to_vec());
        }
        Self { tokens }
    }
}

impl Vocabulary for Toy {
    fn model_name(&self) -> &str {
        "toy"
    }
    fn model_sha256(&self) -> &str {
        "00"
    }
    fn n_vocab(&self) -> u32 {
        self.tokens.len() as u32 + 2
    }
    fn sot(&self) -> u32 {
        self.tokens.len() as u32 + 1
    }
    fn eot(&self) -> u32 {
        self.tokens.len() as u32
    }
    fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        self.tokens.get(id as usize).cloned()
    }
}

const TEXT: &str = "\u{feff}the cat is felis\r\nfelis  catus is the cat\n\nthe Felis genus\n";

#[test]
fn pre_tokenizer_follows_gpt2() {
    assert_eq!(pre_tokenize(" Hello world"), vec![" Hello", " world"]);
    assert_eq!(
        pre_tokenize("it's 150 kg!"),
        vec!["it", "'s", " 150", " kg", "!"]
    );
    assert_eq!(pre_tokenize("a  b"), vec!["a", " ", " b"]);
    assert_eq!(pre_tokenize("end  "), vec!["end", "  "]);
}

#[test]
fn bpe_merges_by_rank() {
    let toy = Toy::new();
    let bpe = Bpe::new((0..toy.eot()).filter_map(|i| toy.token_bytes(i).map(|b| (i, b))));
    let id = |s: &str| toy.tokens.iter().position(|t| t == s.as_bytes()).unwrap() as u32;
    assert_eq!(bpe.encode(" the cat"), vec![id(" the"), id(" cat")]);
    assert_eq!(bpe.encode(" felis"), vec![id(" felis")]);
    assert_eq!(bpe.encode(" hex"), vec![id(" "), id("he"), id("x")]);
}

#[test]
fn lm_probabilities_sum_to_one() {
    let seqs = vec![vec![9, 1, 2, 3, 8], vec![9, 1, 2, 4, 8], vec![9, 2, 3, 8]];
    let lm = NgramLm::from_counts(count(&seqs, 3), 10, 9);
    for history in [&[][..], &[1], &[1, 2], &[5, 5], &[2, 3]] {
        let total: f32 = (0..10).map(|t| lm.log_prob(history, t).exp()).sum();
        assert!((total - 1.0).abs() < 1e-4, "{history:?}: {total}");
        // The dense scorer agrees with the pointwise one.
        let mut dense = vec![0.0f32; 10];
        lm.add_log_probs(history, 1.0, f32::NEG_INFINITY, &mut dense);
        for t in 0..10u32 {
            assert!((dense[t as usize] - lm.log_prob(history, t)).abs() < 1e-4);
        }
    }
    // Seen continuations are likelier than unseen ones.
    assert!(lm.log_prob(&[1], 2) > lm.log_prob(&[1], 4));
}

#[test]
fn training_reads_only_what_it_is_given() {
    let toy = Toy::new();
    let m = AdaptedModel::train(&[TEXT], &[], &toy).unwrap();
    assert_eq!(m.base_model(), "toy");
    assert!(m.lm().counts()[0].len() > 3);
    assert!(AdaptedModel::train(&["  \n\u{feff}"], &[], &toy).is_err());
}

#[test]
fn artifact_round_trips_and_rejects_bad_input() {
    let toy = Toy::new();
    let prons = vec![("Felis catus".to_string(), "feel is cat us".to_string())];
    let m = AdaptedModel::train(&[TEXT], &prons, &toy).unwrap();
    let bytes = m.to_bytes();
    let back = AdaptedModel::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes, "deterministic bytes");
    assert_eq!(back.params(), m.params());
    assert_eq!(back.prompt(), m.prompt());
    for h in [&[][..], &[toy.eot() - 1]] {
        assert_eq!(back.lm().log_prob(h, 3), m.lm().log_prob(h, 3));
    }
    // Every truncation and every flipped byte is refused, without panicking.
    for n in 0..bytes.len() {
        assert!(AdaptedModel::from_bytes(&bytes[..n]).is_err(), "cut at {n}");
    }
    for i in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        assert!(AdaptedModel::from_bytes(&b).is_err(), "flip at {i}");
    }
    // A newer format version is refused with a clear message.
    let mut newer = bytes.clone();
    newer[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    let err = AdaptedModel::from_bytes(&newer).unwrap_err().to_string();
    assert!(err.contains("newer"), "{err}");
    // Garbage.
    assert!(AdaptedModel::from_bytes(b"hello").is_err());
    assert!(AdaptedModel::from_bytes(&[0u8; 4096]).is_err());
    // A well-formed, checksummed artifact whose counts claim more than there is.
    let mut forged = bytes[..bytes.len() - 32].to_vec();
    forged.extend_from_slice(&u32::MAX.to_le_bytes());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&forged);
    forged.extend_from_slice(&digest);
    assert!(AdaptedModel::from_bytes(&forged).is_err());
}

#[test]
fn display_forms_replace_spoken_forms() {
    let toy = Toy::new();
    let prons = vec![
        ("Felis catus".to_string(), "feel is cat us".to_string()),
        ("IEEE".to_string(), "i triple e".to_string()),
    ];
    let m = AdaptedModel::train(&[TEXT], &prons, &toy).unwrap();
    assert_eq!(
        m.apply_display_forms("The Feel is cat us, and I triple E."),
        "The Felis catus, and IEEE."
    );
    assert_eq!(m.apply_display_forms("a cat"), "a cat");
}
