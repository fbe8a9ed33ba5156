//! Leases on background jobs, so that a job runs on exactly one node of a region at a time.
//!
//! Several `tandem serve` nodes of one region share its metadata store. A job (training a
//! model, running an evaluation, a copy, the backup worker) is run by the node that holds its
//! lease: [`MetaStore::acquire_lease`](crate::MetaStore::acquire_lease) takes a free or expired
//! lease (or gives a node back its own), the holder renews it well before it expires, and
//! releases it when done. A node that dies stops renewing; once the lease expires, another
//! node's next scan takes the job over. Each acquisition by a new holder bumps the lease's
//! `generation`, so a takeover is visible and counted.
//!
//! Times are passed in, never read from a clock here: callers decide what "now" is, so the
//! rules are tested on controlled time.
//!
//! Leases are operational state, not customer data: they are left out of metadata exports
//! (and so of backups).

use time::OffsetDateTime;

/// The table that holds them (left out of exports).
pub const LEASE_TABLE: &str = "job_leases";

/// A held lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The job, e.g. `train/<resource>/<model>`.
    pub job: String,
    /// Who holds it: a node's stable name.
    pub holder: String,
    /// When it lapses unless renewed.
    pub expires_at: OffsetDateTime,
    /// How many times a holder other than the previous one acquired it (1 for the first).
    pub generation: u64,
}
