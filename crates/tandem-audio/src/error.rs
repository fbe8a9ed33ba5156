//! The one error type of this crate.
//!
//! Messages are written for API callers: the server puts them verbatim into HTTP 400 bodies, so
//! each says what was wrong with the upload and, where it helps, what to send instead.

/// Why audio could not be decoded, or an output format name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    /// The request body had no bytes at all.
    #[error("audio body is empty; send a WAV file (RIFF/WAVE, PCM)")]
    Empty,
    /// The body does not start with a RIFF header.
    #[error(
        "audio is not a WAV file: expected a RIFF header, found {found}; send RIFF/WAVE PCM audio"
    )]
    NotRiff {
        /// A printable description of the first bytes.
        found: String,
    },
    /// A RIFF container, but not of form type WAVE.
    #[error("audio is a RIFF file but not WAVE (form type {found}); send RIFF/WAVE PCM audio")]
    NotWave {
        /// The form type found instead of `WAVE`.
        found: String,
    },
    /// The header ended before the RIFF/WAVE preamble was complete.
    #[error("WAV header is truncated: only {len} bytes received, need at least 12")]
    TruncatedHeader {
        /// Number of bytes received.
        len: usize,
    },
    /// No `fmt ` chunk before the end of the file (or before the data chunk).
    #[error("WAV file has no 'fmt ' chunk, so its encoding is unknown")]
    MissingFmt,
    /// No `data` chunk.
    #[error("WAV file has no 'data' chunk (no audio samples)")]
    MissingData,
    /// The `fmt ` chunk is shorter than its encoding requires.
    #[error("WAV 'fmt ' chunk is truncated: {len} bytes, need at least {need}")]
    TruncatedFmt {
        /// Bytes available in the chunk.
        len: usize,
        /// Bytes the format requires.
        need: usize,
    },
    /// A compressed or otherwise unsupported encoding.
    #[error("unsupported WAV encoding: format tag {tag:#06x}{}; send PCM (8/16/24/32-bit integer or 32/64-bit float)", tag_suffix(*.tag))]
    UnsupportedFormat {
        /// The WAVE format tag (or extensible sub-format).
        tag: u16,
    },
    /// A bit depth that the encoding does not allow.
    #[error("unsupported WAV bit depth: {bits}-bit {encoding}; supported are 8/16/24/32-bit integer PCM and 32/64-bit float")]
    UnsupportedBits {
        /// Bits per sample from the header.
        bits: u16,
        /// `"integer PCM"` or `"float"`.
        encoding: &'static str,
    },
    /// Channel count outside 1..=8.
    #[error("unsupported WAV channel count: {channels}; supported are 1 to 8 channels")]
    BadChannels {
        /// Channels from the header.
        channels: u16,
    },
    /// Sample rate outside 8000..=192000 Hz.
    #[error("unsupported WAV sample rate: {rate} Hz; supported are 8000 to 192000 Hz")]
    BadSampleRate {
        /// Rate from the header.
        rate: u32,
    },
    /// `block_align` does not equal channels × bytes per sample.
    #[error("invalid WAV header: block_align is {found} but {channels} channel(s) of {bits}-bit samples need {expected}")]
    BadBlockAlign {
        /// Value in the header.
        found: u16,
        /// channels × bits / 8.
        expected: u32,
        /// Channels from the header.
        channels: u16,
        /// Bits per sample from the header.
        bits: u16,
    },
    /// An `X-Microsoft-OutputFormat` name this server does not produce.
    #[error("unsupported output format '{name}'; supported formats are: {}", crate::OutputFormat::SUPPORTED.join(", "))]
    UnknownOutputFormat {
        /// The name as requested.
        name: String,
    },
}

/// Human name of well-known WAVE format tags, for error messages.
pub(crate) fn tag_name(tag: u16) -> Option<&'static str> {
    Some(match tag {
        0x0002 => "Microsoft ADPCM",
        0x0006 => "A-law",
        0x0007 => "mu-law",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0040 => "G.721 ADPCM",
        0x0050 => "MPEG",
        0x0055 => "MP3",
        0x00FF | 0x1610 => "AAC",
        0x0161..=0x0163 => "Windows Media Audio",
        0x674F..=0x6751 => "Ogg Vorbis",
        0x704F => "Opus",
        0xF1AC => "FLAC",
        _ => return None,
    })
}

fn tag_suffix(tag: u16) -> String {
    match tag_name(tag) {
        Some(name) => format!(" ({name})"),
        None => String::new(),
    }
}

/// Describe up to four leading bytes for an error message: text if printable, else hex.
pub(crate) fn describe_magic(bytes: &[u8]) -> String {
    let head = &bytes[..bytes.len().min(4)];
    if head.is_empty() {
        "nothing".to_owned()
    } else if head.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        format!("'{}'", String::from_utf8_lossy(head))
    } else {
        let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
        format!("bytes {}", hex.join(" "))
    }
}
