//! Why an upload is refused as a whole.

use thiserror::Error;

/// An upload that cannot be a dataset at all. Per-file problems are not errors: they go into
/// the [`Report`](crate::Report).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatasetError {
    /// Nothing was uploaded.
    #[error("the upload is empty")]
    Empty,
    /// The bytes are not a readable zip archive.
    #[error("not a zip archive: {0}")]
    NotAZip(String),
    /// An entry name escapes the archive (`../`, an absolute path, a drive letter).
    #[error("zip entry {name:?} points outside the archive (zip slip): refused")]
    ZipSlip {
        /// The entry's name.
        name: String,
    },
    /// The zip has folders; Azure datasets are flat zips.
    #[error("zip entry {name:?} is in a folder: put every file at the top level of the zip")]
    NestedFolder {
        /// The entry's name.
        name: String,
    },
    /// A symbolic link.
    #[error("zip entry {name:?} is a symbolic link: refused")]
    Symlink {
        /// The entry's name.
        name: String,
    },
    /// An encrypted entry.
    #[error("zip entry {name:?} is encrypted: upload an unencrypted zip")]
    Encrypted {
        /// The entry's name.
        name: String,
    },
    /// Two entries with the same name.
    #[error("zip entry {name:?} appears twice")]
    Duplicate {
        /// The entry's name.
        name: String,
    },
    /// Too many entries.
    #[error("the zip has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// One entry decompresses to more than the limit.
    #[error("zip entry {name:?} is larger than {limit} bytes uncompressed")]
    EntryTooLarge {
        /// The entry's name.
        name: String,
        /// The limit, bytes.
        limit: u64,
    },
    /// All entries together decompress to more than the limit.
    #[error("the zip holds more than {limit} bytes uncompressed")]
    TotalTooLarge {
        /// The limit, bytes.
        limit: u64,
    },
    /// An entry expands far more than real audio or text does.
    #[error("zip entry {name:?} expands more than {limit}x: refused as a zip bomb")]
    ZipBomb {
        /// The entry's name.
        name: String,
        /// The ratio limit.
        limit: u64,
    },
    /// An `Acoustic` zip without `trans.txt`.
    #[error(
        "an Acoustic dataset needs a trans.txt with one line per audio file (name<TAB>transcript)"
    )]
    MissingTranscripts,
    /// A text file that is not UTF-8.
    #[error("{name} is not UTF-8 text (byte {offset})")]
    NotUtf8 {
        /// The file.
        name: String,
        /// Where the first invalid byte is.
        offset: usize,
    },
}
