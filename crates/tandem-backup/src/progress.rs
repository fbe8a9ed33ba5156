//! Progress reporting. The CLI maps it to progress bars; the library calls it from worker tasks,
//! so implementations must be cheap and thread-safe.

/// A long operation's stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Listing the repository (chunks, snapshots).
    Scan,
    /// Reading and storing the source.
    Backup,
    /// Reading chunks back to check them (verify, restore's preflight).
    Verify,
    /// Writing files to the sink.
    Restore,
    /// Deleting snapshots and unused chunks.
    Prune,
}

/// Receives progress. Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A phase starts; `total_bytes` when known (for a bar's length).
    fn start(&self, _phase: Phase, _total_bytes: Option<u64>) {}
    /// `bytes` more bytes of the current phase are done.
    fn advance(&self, _bytes: u64) {}
    /// A file (or `<metadata>`) is done.
    fn file_done(&self, _path: &str) {}
    /// The current phase ends.
    fn finish(&self, _phase: Phase) {}
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
