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

#[test]
fn the_bias_trie_boosts_starts_and_continuations_of_rare_words() {
    let toy = Toy::new();
    let m = AdaptedModel::train(&[TEXT], &[], &toy).unwrap();
    let id = |s: &str| toy.tokens.iter().position(|t| t == s.as_bytes()).unwrap() as u32;
    // " catus" is " cat" "u" "s" (three pieces): rare, so biased; " felis" is one token: not.
    let (continuing, starting) = m.bias.boosted(&[]);
    assert!(continuing.is_empty());
    assert!(starting.contains(&id(" cat")));
    assert!(!starting.contains(&id(" felis")));
    let (continuing, _) = m.bias.boosted(&[id(" the"), id(" cat")]);
    assert_eq!(continuing, &[id("u")]);
    let (continuing, _) = m.bias.boosted(&[id(" cat"), id("u")]);
    assert_eq!(continuing, &[id("s")]);
    // The bonus reaches the logits only when switched on.
    let mut on = m.clone();
    on.set_params(AdaptParams {
        lm_weight: 0.0,
        word_bonus: 2.0,
        ..m.params()
    });
    let mut logits = vec![0.0f32; toy.n_vocab() as usize];
    Fusion::new(&on, logits.len()).apply(&[id(" cat")], &mut logits);
    assert_eq!(logits[id("u") as usize], 2.0);
    assert_eq!(logits[id("x") as usize], 0.0);
}

/// The layout of format 1: format 2 without `word_bonus` and the bias words.
fn as_format_1(m: &AdaptedModel) -> Vec<u8> {
    let v2 = m.to_bytes();
    let body = &v2[..v2.len() - 32];
    let bonus_at = 12 + 4 + m.base_model().len() + 4 + m.base_sha256().len() + 12 + 20;
    let words_len: usize = 4 + m
        .bias
        .words()
        .iter()
        .map(|w| 4 + 4 * w.len())
        .sum::<usize>();
    let mut v1 = body[..bonus_at].to_vec();
    v1.extend_from_slice(&body[bonus_at + 4..body.len() - words_len]);
    v1[8..12].copy_from_slice(&1u32.to_le_bytes());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&v1);
    v1.extend_from_slice(&digest);
    v1
}

#[test]
fn format_1_artifacts_still_load_without_the_word_bonus() {
    let toy = Toy::new();
    let prons = vec![("Felis catus".to_string(), "feel is cat us".to_string())];
    let mut m = AdaptedModel::train(&[TEXT], &prons, &toy).unwrap();
    m.set_params(AdaptParams {
        word_bonus: 1.5,
        ..m.params()
    });
    assert!(!m.bias.words().is_empty());
    let v1 = as_format_1(&m);
    assert_eq!(&v1[8..12], &1u32.to_le_bytes());
    let old = AdaptedModel::from_bytes(&v1).unwrap();
    assert_eq!(
        old.params(),
        AdaptParams {
            word_bonus: 0.0,
            ..m.params()
        }
    );
    assert!(old.bias.words().is_empty());
    assert_eq!(old.prompt(), m.prompt());
    assert_eq!(old.lm().log_prob(&[], 3), m.lm().log_prob(&[], 3));
    assert_eq!(old.apply_display_forms("feel is cat us"), "Felis catus");
    // Written again, it is a format 2 artifact that reads back the same.
    let again = AdaptedModel::from_bytes(&old.to_bytes()).unwrap();
    assert_eq!(&old.to_bytes()[8..12], &FORMAT_VERSION.to_le_bytes());
    assert_eq!(again.to_bytes(), old.to_bytes());
    // A format 1 header on a format 2 body is refused (trailing bytes), not misread.
    let mut mislabelled = m.to_bytes();
    let n = mislabelled.len() - 32;
    mislabelled[8..12].copy_from_slice(&1u32.to_le_bytes());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&mislabelled[..n]);
    mislabelled[n..].copy_from_slice(&digest);
    assert!(AdaptedModel::from_bytes(&mislabelled).is_err());
}
