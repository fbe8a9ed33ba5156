//! The vocabulary: GPT-2 byte-level BPE tokens decoded to the raw bytes whisper.cpp stores.

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
pub(super) fn vocabulary_bytes(vocabulary: &str, n_vocab: usize) -> Result<Vec<Vec<u8>>, String> {
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
