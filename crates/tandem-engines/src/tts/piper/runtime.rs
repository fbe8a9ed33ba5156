//! Finding and loading ONNX Runtime. The library is never linked or downloaded at build time:
//! it is the `libonnxruntime.so` that `tandem models pull` copied out of the pinned PyPI
//! `onnxruntime` wheel, or the file named by [`ONNXRUNTIME_ENV`] / `ORT_DYLIB_PATH`, and it is
//! loaded once per process.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;

use crate::models::{ModelCache, ONNXRUNTIME};
use crate::{EngineError, Result};

/// Environment variable naming the ONNX Runtime shared library to load; it wins over
/// `ORT_DYLIB_PATH` and over the model directory.
pub const ONNXRUNTIME_ENV: &str = "TANDEM_ONNXRUNTIME";

/// The loaded runtime (the library stays loaded for the life of the process).
static ENV: OnceLock<Environment> = OnceLock::new();
/// Serializes first-time loading; a failed attempt is not remembered, so a later call can
/// succeed once the library has been pulled.
static LOADING: Mutex<()> = Mutex::new(());

/// Where the ONNX Runtime library is: `$TANDEM_ONNXRUNTIME`, else `$ORT_DYLIB_PATH`, else the
/// pulled [`ONNXRUNTIME`] model in `model_dir`. A variable that names no file is an error
/// (never silently ignored); a missing pulled file is [`EngineError::ModelMissing`].
pub fn onnxruntime_path(model_dir: &Path) -> Result<PathBuf> {
    for var in [ONNXRUNTIME_ENV, "ORT_DYLIB_PATH"] {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(value);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(EngineError::Engine(format!(
                    "{var}={} is not a file (it should name libonnxruntime.so)",
                    path.display()
                )))
            };
        }
    }
    ModelCache::new(model_dir).model_path(ONNXRUNTIME)
}

/// Loads ONNX Runtime from [`onnxruntime_path`] unless it is loaded already (later calls
/// ignore `model_dir`: the library stays loaded for the life of the process). A failure is not
/// remembered, so a call after `tandem models pull` succeeds.
pub fn init_onnxruntime(model_dir: &Path) -> Result<()> {
    environment(model_dir).map(|_| ())
}

/// The process-wide ONNX Runtime environment, loading the library the first time.
pub(super) fn environment(model_dir: &Path) -> Result<&'static Environment> {
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let _g = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = ENV.get() {
        return Ok(env);
    }
    let path = onnxruntime_path(model_dir)?;
    let env = ort::init_from(&path)
        .map_err(|e| {
            EngineError::Engine(format!("loading ONNX Runtime from {}: {e}", path.display()))
        })?
        .with_name("tandem")
        .with_telemetry(false)
        .build()
        .map_err(|e| EngineError::Engine(format!("starting ONNX Runtime: {e}")))?;
    tracing::info!(path = %path.display(), "loaded ONNX Runtime");
    Ok(ENV.get_or_init(|| env))
}
