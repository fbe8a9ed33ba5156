//! Arbitrary bytes as a dataset upload of every kind: validation must never panic, and a zip
//! can never yield more than the limits allow, whatever its headers claim.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tandem_datasets::{validate, DatasetKind, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_entries: 64,
        max_entry_bytes: 1 << 20,
        max_total_bytes: 4 << 20,
        ..Limits::default()
    };
    for kind in [
        DatasetKind::Acoustic,
        DatasetKind::AudioFiles,
        DatasetKind::Language,
        DatasetKind::Pronunciation,
    ] {
        if let Ok(v) = validate(kind, data, &limits) {
            let kept: usize = v.audio.iter().map(|(_, b)| b.len()).sum();
            assert!(kept as u64 <= limits.max_total_bytes);
            assert!(v.audio.len() <= limits.max_entries);
        }
    }
});
