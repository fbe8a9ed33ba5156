use super::numbers::spell_numbers_in_word;
use super::*;

#[test]
fn profanity_parses() {
    assert_eq!("Masked".parse::<Profanity>(), Ok(Profanity::Masked));
    assert_eq!(" REMOVED ".parse::<Profanity>(), Ok(Profanity::Removed));
    assert_eq!("raw".parse::<Profanity>(), Ok(Profanity::Raw));
    assert!("none".parse::<Profanity>().is_err());
}

#[test]
fn profanity_is_applied_to_display() {
    let t = "Well, shit. That damn cat!";
    assert_eq!(
        apply_profanity(t, Profanity::Masked),
        "Well, ****. That **** cat!"
    );
    assert_eq!(apply_profanity(t, Profanity::Removed), "Well,. That cat!");
    assert_eq!(apply_profanity(t, Profanity::Raw), t);
    assert_eq!(
        apply_profanity("Shit happens", Profanity::Removed),
        "happens"
    );
    // whole words only
    assert_eq!(
        apply_profanity("Dickens wrote Scrap", Profanity::Masked),
        "Dickens wrote Scrap"
    );
}

#[test]
fn azure_forms_follow_azure() {
    let f = azure_forms(
        "It costs $3.50, not 1,000 dollars! Don't worry.",
        Profanity::Masked,
    );
    assert_eq!(f.display, "It costs $3.50, not 1,000 dollars! Don't worry.");
    assert_eq!(f.itn, "it costs 3.50 not 1000 dollars don't worry");
    assert_eq!(f.masked_itn, f.itn);
    assert_eq!(
        f.lexical,
        "it costs three point five zero not one thousand dollars don't worry"
    );
    let f = azure_forms("What the fuck, 21st time.", Profanity::Masked);
    assert_eq!(f.display, "What the ****, 21st time.");
    assert_eq!(f.itn, "what the fuck 21st time");
    assert_eq!(f.masked_itn, "what the **** 21st time");
    assert_eq!(f.lexical, "what the fuck twenty first time");
    let f = azure_forms("What the fuck.", Profanity::Removed);
    assert_eq!(f.display, "What the.");
    assert_eq!(f.masked_itn, "what the");
    assert_eq!(azure_forms("", Profanity::Masked), AzureForms::default());
    assert_eq!(
        azure_forms("50% off", Profanity::Raw).lexical,
        "fifty percent off"
    );
}

#[test]
fn integers_are_spelled() {
    assert_eq!(spell_integer(0), "zero");
    assert_eq!(spell_integer(7), "seven");
    assert_eq!(spell_integer(40), "forty");
    assert_eq!(spell_integer(99), "ninety nine");
    assert_eq!(spell_integer(100), "one hundred");
    assert_eq!(spell_integer(1205), "one thousand two hundred five");
    assert_eq!(spell_integer(2_000_019), "two million nineteen");
    assert_eq!(
        spell_integer(3_000_000_512),
        "three billion five hundred twelve"
    );
    assert_eq!(
        spell_integer(1_000_000_000_000_000),
        "one thousand trillion"
    );
    assert_eq!(spell_numbers_in_word("007"), "zero zero seven");
    assert_eq!(spell_numbers_in_word("3.5"), "three point five");
    assert_eq!(spell_numbers_in_word("2nd"), "second");
    assert_eq!(spell_numbers_in_word("40th"), "fortieth");
    assert_eq!(spell_numbers_in_word("covid19"), "covid nineteen");
}

#[test]
fn wer_normalisation() {
    assert_eq!(
        normalize_for_wer("\u{feff}The T-Rex ate 2 fish, didn't it?  "),
        vec!["the", "t", "rex", "ate", "two", "fish", "didn't", "it"]
    );
    assert_eq!(normalize_for_wer("  "), Vec::<String>::new());
    assert_eq!(
        normalize_for_wer("Cretaceous era.\r\n"),
        vec!["cretaceous", "era"]
    );
}

#[test]
fn wer_known_examples() {
    let s = word_errors("the cat sat on the mat", "the cat sat on the mat");
    assert_eq!((s.errors(), s.reference_words), (0, 6));
    let s = word_errors("the cat sat on the mat", "the bat sat the mat too");
    assert_eq!((s.substitutions, s.deletions, s.insertions), (1, 1, 1));
    assert!((s.wer() - 0.5).abs() < 1e-12);
    let s = word_errors("", "hello");
    assert_eq!(s.insertions, 1);
    let s = word_errors("a b c", "");
    assert_eq!((s.deletions, s.wer()), (3, 1.0));
    let mut total = WerStats::default();
    total.add(&word_errors("a b", "a c"));
    total.add(&word_errors("d e", "d e"));
    assert_eq!(total.wer(), 0.25);
    assert_eq!(word_errors("Two birds.", "2 birds").errors(), 0);
}

fn naive(r: &[u32], h: &[u32]) -> usize {
    match (r, h) {
        ([], h) => h.len(),
        (r, []) => r.len(),
        ([a, rr @ ..], [b, hh @ ..]) => (naive(rr, hh) + usize::from(a != b))
            .min(naive(rr, h) + 1)
            .min(naive(r, hh) + 1),
    }
}

#[test]
fn alignment_matches_a_naive_oracle() {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let n = (next() % 7) as usize;
        let m = (next() % 7) as usize;
        let r: Vec<u32> = (0..n).map(|_| (next() % 4) as u32).collect();
        let h: Vec<u32> = (0..m).map(|_| (next() % 4) as u32).collect();
        let rs: Vec<String> = r.iter().map(|v| v.to_string()).collect();
        let hs: Vec<String> = h.iter().map(|v| v.to_string()).collect();
        let s = align(&rs, &hs);
        assert_eq!(s.errors(), naive(&r, &h), "{r:?} vs {h:?}");
        assert_eq!(s.reference_words, n);
        // consistency: matches = n - S - D = m - S - I
        assert!(s.substitutions + s.deletions <= n);
        assert_eq!(
            n - s.substitutions - s.deletions,
            m - s.substitutions - s.insertions
        );
    }
}

#[test]
fn trans_txt_is_parsed() {
    let t = "\u{feff}b001.wav\tWhat dinosaurs lived  \r\n\r\n  b002.wav \t Tyrannosaurus rex?\r\nb003.wav two words\n";
    assert_eq!(
        parse_trans_txt(t),
        vec![
            ("b001.wav".to_string(), "What dinosaurs lived".to_string()),
            ("b002.wav".to_string(), "Tyrannosaurus rex?".to_string()),
            ("b003.wav".to_string(), "two words".to_string()),
        ]
    );
    assert!(parse_trans_txt("").is_empty());
}
