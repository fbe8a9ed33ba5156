//! Byte-level BPE with the recognizer's own vocabulary, as Whisper's tokenizer (tiktoken) does it.
//!
//! whisper.cpp's `whisper_tokenize` matches the longest vocabulary entry greedily, which often
//! splits rare words differently from the tokens the model emits. GPT-2-style vocabularies
//! (Whisper's English one among them) assign ids in merge order, so the id of a merged token is
//! its merge rank: this is exactly how tiktoken encodes, and it needs nothing but the vocabulary.

use std::collections::HashMap;

/// A byte-level BPE encoder over a vocabulary of `bytes -> id`.
#[derive(Debug, Clone)]
pub struct Bpe {
    ranks: HashMap<Vec<u8>, u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Letter,
    Number,
    Other,
    Space,
}

fn class(c: char) -> Class {
    if c.is_whitespace() {
        Class::Space
    } else if c.is_alphabetic() {
        Class::Letter
    } else if c.is_numeric() {
        Class::Number
    } else {
        Class::Other
    }
}

/// Splits text as GPT-2's pre-tokenizer pattern does:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
pub fn pre_tokenize(text: &str) -> Vec<&str> {
    let idx: Vec<(usize, char)> = text.char_indices().collect();
    let at = |i: usize| idx.get(i).map(|&(b, _)| b).unwrap_or(text.len());
    let mut out = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let rest = &text[at(i)..];
        if let Some(len) = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
            .iter()
            .find(|c| rest.starts_with(**c))
            .map(|c| c.chars().count())
        {
            out.push(&text[at(i)..at(i + len)]);
            i += len;
            continue;
        }
        let c = idx[i].1;
        let mut j = i;
        if c == ' '
            && idx
                .get(i + 1)
                .is_some_and(|&(_, n)| class(n) != Class::Space)
        {
            j += 1;
        }
        let k = class(idx[j].1);
        if k != Class::Space {
            let mut e = j + 1;
            while e < idx.len() && class(idx[e].1) == k {
                e += 1;
            }
            out.push(&text[at(i)..at(e)]);
            i = e;
            continue;
        }
        let mut e = i + 1;
        while e < idx.len() && class(idx[e].1) == Class::Space {
            e += 1;
        }
        if e < idx.len() && e - i > 1 {
            e -= 1; // the last blank goes with the next word
        }
        out.push(&text[at(i)..at(e)]);
        i = e;
    }
    out
}

impl Bpe {
    /// An encoder over `vocab` (token bytes, indexed by id). Later duplicates are ignored.
    pub fn new(vocab: impl IntoIterator<Item = (u32, Vec<u8>)>) -> Self {
        let mut ranks = HashMap::new();
        for (id, bytes) in vocab {
            if !bytes.is_empty() {
                ranks.entry(bytes).or_insert(id);
            }
        }
        Self { ranks }
    }

    /// Encodes `text`. Bytes with no token of their own are skipped (a byte-level vocabulary
    /// has all 256).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for piece in pre_tokenize(text) {
            self.encode_piece(piece.as_bytes(), &mut out);
        }
        out
    }

    fn encode_piece(&self, piece: &[u8], out: &mut Vec<u32>) {
        if let Some(&id) = self.ranks.get(piece) {
            out.push(id);
            return;
        }
        let mut parts: Vec<Vec<u8>> = piece.iter().map(|&b| vec![b]).collect();
        loop {
            let mut best: Option<(u32, usize)> = None;
            for i in 0..parts.len().saturating_sub(1) {
                let mut merged = parts[i].clone();
                merged.extend_from_slice(&parts[i + 1]);
                if let Some(&rank) = self.ranks.get(&merged) {
                    if best.is_none_or(|(r, _)| rank < r) {
                        best = Some((rank, i));
                    }
                }
            }
            let Some((_, i)) = best else { break };
            let next = parts.remove(i + 1);
            parts[i].extend_from_slice(&next);
        }
        out.extend(parts.iter().filter_map(|p| self.ranks.get(p).copied()));
    }
}
