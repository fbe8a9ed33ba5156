//! The shared test data (`../shared/data` beside the repository).

use std::path::PathBuf;

/// The shared data directory: `$TANDEM_SHARED_DATA`, else `<repo>/../shared/data`.
pub fn shared_data() -> PathBuf {
    if let Some(d) = std::env::var_os("TANDEM_SHARED_DATA") {
        return PathBuf::from(d);
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

/// One recording of the biology set with its human transcript.
#[derive(Debug, Clone)]
pub struct BiologyClip {
    /// File name, e.g. `1.wav`.
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// The transcript from `trans.txt` (whitespace-trimmed).
    pub transcript: String,
}

/// The 50 recordings of `custom-speech-biology`, in `trans.txt` order.
pub fn biology() -> Vec<BiologyClip> {
    let dir = shared_data().join("custom-speech-biology");
    let text = std::fs::read_to_string(dir.join("trans.txt"))
        .unwrap_or_else(|e| panic!("reading {}/trans.txt: {e}", dir.display()));
    text.trim_start_matches('\u{feff}')
        .lines()
        .filter_map(|l| {
            let (name, t) = l.split_once('\t')?;
            let name = name.trim().to_owned();
            Some(BiologyClip {
                path: dir.join("audio").join(&name),
                name,
                transcript: t.trim().to_owned(),
            })
        })
        .collect()
}
