//! A bounded pool of engine workers.
//!
//! Engines are CPU-bound and synchronous, so they run on blocking threads, at most `workers` at a
//! time. Up to `max_queue` more requests may wait; past that the region answers 503 with
//! `Retry-After` rather than build an unbounded queue.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use prometheus::IntGauge;
use tokio::sync::Semaphore;

use crate::ApiError;

/// A bounded pool of engine workers.
#[derive(Clone)]
pub struct EnginePool {
    name: &'static str,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_queue: usize,
    queue_gauge: IntGauge,
    busy_gauge: IntGauge,
}

impl EnginePool {
    /// A pool of `workers` concurrent jobs with room for `max_queue` waiting ones.
    pub fn new(
        name: &'static str,
        workers: usize,
        max_queue: usize,
        queue_gauge: IntGauge,
        busy_gauge: IntGauge,
    ) -> Self {
        Self {
            name,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_queue,
            queue_gauge,
            busy_gauge,
        }
    }

    /// Jobs waiting for a worker now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `job` on a worker, waiting for one if all are busy.
    pub async fn run<T, F>(&self, job: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let depth = self.waiting.fetch_add(1, Ordering::SeqCst) + 1;
        if depth > self.max_queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::Unavailable {
                message: format!("the {} engines are saturated; retry shortly", self.name),
                retry_after: 1,
            });
        }
        self.queue_gauge.set(self.queue_depth() as i64);
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        self.queue_gauge.set(self.queue_depth() as i64);
        let permit = permit.map_err(|_| ApiError::Unavailable {
            message: "the region is shutting down".into(),
            retry_after: 1,
        })?;
        self.busy_gauge.inc();
        let busy = self.busy_gauge.clone();
        let out = tokio::task::spawn_blocking(move || {
            let out = job();
            drop(permit);
            busy.dec();
            out
        })
        .await
        .map_err(|e| ApiError::Internal(format!("engine worker panicked: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: usize, queue: usize) -> EnginePool {
        EnginePool::new(
            "test",
            workers,
            queue,
            IntGauge::new("q", "q").unwrap(),
            IntGauge::new("b", "b").unwrap(),
        )
    }

    #[tokio::test]
    async fn runs_jobs_and_returns_results() {
        let p = pool(2, 4);
        assert_eq!(p.run(|| 2 + 2).await.unwrap(), 4);
    }

    #[tokio::test]
    async fn overflow_beyond_the_queue_is_503() {
        let p = pool(1, 1);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // Occupy the only worker until we say so.
        let busy = tokio::spawn({
            let p = p.clone();
            async move { p.run(move || rx.recv().unwrap()).await }
        });
        while p.busy_gauge.get() == 0 {
            tokio::task::yield_now().await;
        }
        // One waiter fits in the queue...
        let waiter = tokio::spawn({
            let p = p.clone();
            async move { p.run(|| 7).await }
        });
        while p.queue_depth() == 0 {
            tokio::task::yield_now().await;
        }
        // ...the next one does not.
        let err = p.run(|| 0).await.unwrap_err();
        assert_eq!(err.status().as_u16(), 503);
        tx.send(()).unwrap();
        busy.await.unwrap().unwrap();
        assert_eq!(waiter.await.unwrap().unwrap(), 7);
    }
}
