use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use tandem_engines::models::WHISPER_TINY_EN;
use tandem_engines::{Recognition, RecognizeOptions};

use super::*;

struct Fake(&'static str);

impl Recognizer for Fake {
    fn name(&self) -> &str {
        self.0
    }
    fn supports_language(&self, _: &str) -> bool {
        true
    }
    fn recognize(&self, _: &[f32], _: &RecognizeOptions) -> tandem_engines::Result<Recognition> {
        Ok(Recognition {
            text: self.0.into(),
            confidence: 1.0,
        })
    }
}

fn tiny() -> Arc<dyn Recognizer> {
    Arc::new(Fake(WHISPER_TINY_EN))
}

/// A loader that counts its calls, fails while `fail` is set, and blocks while the gate is
/// shut.
struct Script {
    calls: AtomicUsize,
    fail: std::sync::atomic::AtomicBool,
    shut: Mutex<bool>,
    opened: Condvar,
}

impl Script {
    fn shut(&self) {
        *self.shut.lock().unwrap() = true;
    }

    fn open(&self) {
        *self.shut.lock().unwrap() = false;
        self.opened.notify_all();
    }

    fn pass(&self) {
        let mut shut = self.shut.lock().unwrap();
        while *shut {
            shut = self.opened.wait(shut).unwrap();
        }
    }
}

fn scripted() -> (Arc<Script>, Loader) {
    let script = Arc::new(Script {
        calls: AtomicUsize::new(0),
        fail: false.into(),
        shut: Mutex::new(false),
        opened: Condvar::new(),
    });
    let s = script.clone();
    let loader: Loader = Arc::new(move |name: &str| {
        s.calls.fetch_add(1, Ordering::SeqCst);
        s.pass();
        if s.fail.load(Ordering::SeqCst) {
            return Err("pip failed".into());
        }
        let name: &'static str = pinned(name).unwrap().name;
        Ok(Arc::new(Fake(name)) as Arc<dyn Recognizer>)
    });
    (script, loader)
}

#[test]
fn the_default_comes_first_and_on_demand_models_carry_their_pinned_sha256() {
    let (_, loader) = scripted();
    let bases = BaseEngines::with_loader(tiny(), ON_DEMAND, loader);
    let models = bases.models();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0].name, WHISPER_TINY_EN);
    assert!(models[0].default);
    assert_eq!(models[1].name, WHISPER_BASE);
    assert_eq!(models[1].sha256, pinned(WHISPER_BASE).unwrap().ggml_sha256);
    assert!(models[1].adaptable && !models[1].default);
}

#[test]
fn a_default_that_is_also_on_demand_is_listed_once() {
    let (_, loader) = scripted();
    let bases = BaseEngines::with_loader(Arc::new(Fake(WHISPER_BASE)), ON_DEMAND, loader);
    assert_eq!(bases.models().len(), 1);
    assert_eq!(bases.get_now(WHISPER_BASE).unwrap().name(), WHISPER_BASE);
}

#[tokio::test]
async fn unknown_models_are_refused_and_the_default_needs_no_loading() {
    let (script, loader) = scripted();
    let bases = BaseEngines::with_loader(tiny(), ON_DEMAND, loader);
    assert_eq!(
        bases.get_now("whisper-huge").err(),
        Some(BaseError::Unknown("whisper-huge".into()))
    );
    assert_eq!(
        bases.get("whisper-huge").await.err(),
        Some(BaseError::Unknown("whisper-huge".into()))
    );
    assert_eq!(
        bases.get(WHISPER_TINY_EN).await.unwrap().name(),
        WHISPER_TINY_EN
    );
    assert_eq!(script.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn one_load_at_a_time_while_callers_are_told_to_come_back() {
    let (script, loader) = scripted();
    let bases = BaseEngines::with_loader(tiny(), ON_DEMAND, loader);
    script.shut();
    for _ in 0..3 {
        assert_eq!(
            bases.get_now(WHISPER_BASE).err(),
            Some(BaseError::Loading(WHISPER_BASE.into()))
        );
    }
    script.open();
    let r = bases.get(WHISPER_BASE).await.unwrap();
    assert_eq!(r.name(), WHISPER_BASE);
    assert_eq!(bases.get_now(WHISPER_BASE).unwrap().name(), WHISPER_BASE);
    assert_eq!(script.calls.load(Ordering::SeqCst), 1, "one pull and load");
}

#[tokio::test]
async fn a_failed_load_is_reported_to_waiters_and_retried_by_the_next_caller() {
    let (script, loader) = scripted();
    script.fail.store(true, Ordering::SeqCst);
    let bases = BaseEngines::with_loader(tiny(), ON_DEMAND, loader);
    script.shut();
    assert!(matches!(
        bases.get_now(WHISPER_BASE),
        Err(BaseError::Loading(_))
    ));
    // Both wait on the running job: polled once before the gate opens.
    let mut a = std::pin::pin!(bases.get(WHISPER_BASE));
    let mut b = std::pin::pin!(bases.get(WHISPER_BASE));
    std::future::poll_fn(|cx| {
        assert!(a.as_mut().poll(cx).is_pending());
        assert!(b.as_mut().poll(cx).is_pending());
        std::task::Poll::Ready(())
    })
    .await;
    script.open();
    let (a, b) = (a.await, b.await);
    assert_eq!(a.err(), Some(BaseError::Failed(WHISPER_BASE.into())));
    assert_eq!(b.err(), Some(BaseError::Failed(WHISPER_BASE.into())));
    assert_eq!(
        script.calls.load(Ordering::SeqCst),
        1,
        "waiters share one job"
    );
    script.fail.store(false, Ordering::SeqCst);
    assert_eq!(bases.get(WHISPER_BASE).await.unwrap().name(), WHISPER_BASE);
    assert_eq!(script.calls.load(Ordering::SeqCst), 2);
}
