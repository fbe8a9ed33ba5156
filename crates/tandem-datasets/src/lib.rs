//! Custom Speech datasets: what a customer uploads, read safely and validated the way Azure
//! does it, with a report per file.
//!
//! - [`zipfile`] reads an untrusted zip under [`Limits`]: no path traversal ("zip slip"), no
//!   folders (Azure wants flat zips), no symlinks, no encrypted or duplicate entries, and no
//!   entry or total larger than the limits *as actually decompressed*, whatever the headers claim
//!   (so a zip bomb stops at the limit, with a clear error).
//! - [`validate`] checks a dataset of one [`DatasetKind`]: an `Acoustic` zip (WAVs plus
//!   `trans.txt`), `AudioFiles` (WAVs), `Language` text or a `Pronunciation` file. Problems with
//!   one file or line are *reported* ([`Report`]) and the rest is kept; problems with the upload
//!   as a whole are *refused* ([`DatasetError`]).
//!
//! Nothing here does I/O: callers pass bytes and store what [`Validated`] holds.

#![deny(missing_docs)]

mod error;
mod kinds;
mod report;
pub mod zipfile;

pub use error::DatasetError;
pub use kinds::{validate, DatasetKind, Utterance, Validated};
pub use report::{FileReport, FileStatus, Report};

/// Upper bounds for an upload. The defaults suit Custom Speech training data on one machine.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Entries in a zip (10 000).
    pub max_entries: usize,
    /// Decompressed size of one entry (64 MiB).
    pub max_entry_bytes: u64,
    /// Decompressed size of all entries together (1 GiB).
    pub max_total_bytes: u64,
    /// Decompressed / compressed size of one entry, above which (and above 1 MiB) it is
    /// refused as a zip bomb (200).
    pub max_ratio: u64,
    /// Longest audio file, in seconds (60, as Azure's training audio).
    pub max_audio_secs: f64,
    /// Longest line of a text dataset, in characters (1 000).
    pub max_line_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 10_000,
            max_entry_bytes: 64 * 1024 * 1024,
            max_total_bytes: 1024 * 1024 * 1024,
            max_ratio: 200,
            max_audio_secs: 60.0,
            max_line_chars: 1_000,
        }
    }
}
