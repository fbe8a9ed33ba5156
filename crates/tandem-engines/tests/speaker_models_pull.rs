//! Pulls the speaker encoder into a fresh cache with our own pull code: pip download of the
//! pinned `resemblyzer` wheel, wheel sha256, extraction of `resemblyzer/pretrained.pt` only,
//! sha256 of the extracted file. A damaged file is noticed and pulled again.

use tandem_engines::models::{ModelCache, PullEvent, SPEAKER_GE2E};

#[test]
fn pull_speaker_ge2e_into_a_fresh_cache() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ModelCache::new(dir.path());
    assert!(!cache.verify(SPEAKER_GE2E).unwrap());
    let path = cache
        .pull(SPEAKER_GE2E, &|_| {})
        .unwrap_or_else(|e| panic!("pulling {SPEAKER_GE2E}: {e}"));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 17_090_379);
    assert!(cache.verify(SPEAKER_GE2E).unwrap());
    assert_eq!(cache.model_path(SPEAKER_GE2E).unwrap(), path);
    // Only the model file is left in the cache: no wheel, no other wheel entries.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("speaker-ge2e.pt")]);

    std::fs::write(&path, b"damaged").unwrap();
    assert!(!cache.verify(SPEAKER_GE2E).unwrap());
    let events = std::sync::Mutex::new(Vec::new());
    cache
        .pull(SPEAKER_GE2E, &|e| events.lock().unwrap().push(e))
        .unwrap();
    assert!(cache.verify(SPEAKER_GE2E).unwrap());
    assert!(events
        .into_inner()
        .unwrap()
        .iter()
        .any(|e| matches!(e, PullEvent::Downloading { .. })));
}
