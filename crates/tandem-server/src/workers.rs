//! What the region's background workers are doing, for `/status`, `/status.json` and
//! `tandem workers`.
//!
//! Each long-lived worker (backup, endpoint-log retention, the job-resume scan) registers under
//! a name and reports when it starts and ends a run; training, evaluation and copy jobs appear
//! while they run (through [`crate::jobs::run_leased`]) and stay in a short list of recently
//! finished jobs. The registry only records: it never drives a worker.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;
use time::OffsetDateTime;

/// Finished jobs kept for the status page.
const RECENT_JOBS: usize = 20;

/// A worker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerState {
    /// Waiting for its next run.
    Idle,
    /// Running now.
    Busy,
    /// Its last run failed; it retries at its next run.
    Error,
    /// Turned off by the configuration.
    Off,
    /// A job that finished.
    Done,
}

/// One worker, as listed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerInfo {
    /// Its name, unique in the process: `backup`, `job/train/<resource>/<model>`, ….
    pub name: String,
    /// What it is: `backup`, `replication`, `job`, `probe`, `engines`.
    pub kind: String,
    /// Its state.
    pub state: WorkerState,
    /// One line about what it does or did last.
    pub detail: String,
    /// When its last run started (Unix seconds).
    pub last_run: Option<i64>,
    /// When its last run succeeded (Unix seconds).
    pub last_ok: Option<i64>,
    /// The last failure's message, until a run succeeds.
    pub last_error: Option<String>,
    /// Runs started.
    pub runs: u64,
    /// Runs failed.
    pub errors: u64,
}

impl WorkerInfo {
    /// A worker in `state` with `detail`, never run.
    pub fn new(name: &str, kind: &str, state: WorkerState, detail: impl Into<String>) -> Self {
        WorkerInfo {
            name: name.to_owned(),
            kind: kind.to_owned(),
            state,
            detail: detail.into(),
            last_run: None,
            last_ok: None,
            last_error: None,
            runs: 0,
            errors: 0,
        }
    }
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// The registry, one per region process (in [`crate::AppState`]).
#[derive(Debug, Default)]
pub struct Workers {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    workers: BTreeMap<String, WorkerInfo>,
    finished: VecDeque<WorkerInfo>,
}

impl Workers {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.inner.lock().expect("workers lock"))
    }

    /// Registers (or re-registers) a long-lived worker.
    pub fn register(&self, name: &str, kind: &str, state: WorkerState, detail: &str) {
        self.with(|i| {
            i.workers
                .insert(name.to_owned(), WorkerInfo::new(name, kind, state, detail))
        });
    }

    /// A run of `name` starts.
    pub fn started(&self, name: &str) {
        self.with(|i| {
            if let Some(w) = i.workers.get_mut(name) {
                w.state = WorkerState::Busy;
                w.last_run = Some(now());
                w.runs += 1;
            }
        });
    }

    /// The run of `name` ended: `Ok(detail)` or `Err(message)`.
    pub fn finished(&self, name: &str, outcome: Result<String, String>) {
        self.with(|i| {
            if let Some(w) = i.workers.get_mut(name) {
                match outcome {
                    Ok(detail) => {
                        w.state = WorkerState::Idle;
                        w.last_ok = Some(now());
                        w.last_error = None;
                        if !detail.is_empty() {
                            w.detail = detail;
                        }
                    }
                    Err(e) => {
                        w.state = WorkerState::Error;
                        w.errors += 1;
                        w.last_error = Some(e);
                    }
                }
            }
        });
    }

    /// A job (`train/…`, `evaluate/…`, `copy/…`) starts on this node.
    pub fn job_started(&self, job: &str) {
        let name = format!("job/{job}");
        let mut w = WorkerInfo::new(&name, "job", WorkerState::Busy, "running");
        w.last_run = Some(now());
        w.runs = 1;
        self.with(|i| i.workers.insert(name, w));
    }

    /// The job ended (or was cancelled): it moves to the recently finished list.
    pub fn job_finished(&self, job: &str) {
        let name = format!("job/{job}");
        self.with(|i| {
            if let Some(mut w) = i.workers.remove(&name) {
                w.state = WorkerState::Done;
                w.last_ok = Some(now());
                w.detail = "finished".into();
                if i.finished.len() == RECENT_JOBS {
                    i.finished.pop_front();
                }
                i.finished.push_back(w);
            }
        });
    }

    /// Every registered worker and running job by name, then the recently finished jobs, newest
    /// first.
    pub fn list(&self) -> Vec<WorkerInfo> {
        self.with(|i| {
            i.workers
                .values()
                .cloned()
                .chain(i.finished.iter().rev().cloned())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_errors_and_jobs_are_recorded() {
        let w = Workers::default();
        w.register("backup", "backup", WorkerState::Idle, "every 60 s");
        w.started("backup");
        assert_eq!(w.list()[0].state, WorkerState::Busy);
        w.finished("backup", Err("disk full".into()));
        let b = &w.list()[0];
        assert_eq!((b.state, b.errors, b.runs), (WorkerState::Error, 1, 1));
        assert_eq!(b.last_error.as_deref(), Some("disk full"));
        w.started("backup");
        w.finished("backup", Ok("snapshot abc".into()));
        let b = &w.list()[0];
        assert_eq!((b.state, b.errors, b.runs), (WorkerState::Idle, 1, 2));
        assert_eq!(
            (b.detail.as_str(), b.last_error.as_ref()),
            ("snapshot abc", None)
        );

        for n in 0..(RECENT_JOBS + 3) {
            w.job_started(&format!("train/r/{n}"));
            if n == 0 {
                assert!(w
                    .list()
                    .iter()
                    .any(|j| j.name == "job/train/r/0" && j.state == WorkerState::Busy));
            }
            w.job_finished(&format!("train/r/{n}"));
        }
        let list = w.list();
        assert_eq!(list.len(), 1 + RECENT_JOBS, "finished jobs are bounded");
        assert_eq!(list[1].name, format!("job/train/r/{}", RECENT_JOBS + 2));
        assert!(list[1..].iter().all(|j| j.state == WorkerState::Done));
    }
}
