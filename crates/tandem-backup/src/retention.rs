//! The retention policy, as a pure function of snapshot times (restic's semantics, UTC
//! buckets).

use std::collections::BTreeMap;

use time::OffsetDateTime;

/// Which snapshots to keep. A snapshot kept by any rule is kept; the newest is always kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the N newest snapshots.
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the last N (UTC) hours that have snapshots.
    pub keep_hourly: u32,
    /// Keep the newest snapshot of each of the last N (UTC) days that have snapshots.
    pub keep_daily: u32,
}

/// Why a snapshot is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeepReason {
    /// The newest snapshot (always kept).
    Newest,
    /// Among the `keep_last` newest.
    Last,
    /// The newest of its hour.
    Hourly,
    /// The newest of its day.
    Daily,
}

/// The verdict for a set of snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Kept snapshots, newest first, with the rules that keep them.
    pub keep: BTreeMap<String, Vec<KeepReason>>,
    /// Snapshots to forget, newest first.
    pub forget: Vec<String>,
}

/// Applies `policy` to `(id, time)` pairs (in any order).
pub fn plan_retention(snapshots: &[(String, OffsetDateTime)], policy: &Retention) -> RetentionPlan {
    let mut sorted: Vec<&(String, OffsetDateTime)> = snapshots.iter().collect();
    // Newest first; ids break ties (they sort by time too).
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut plan = RetentionPlan::default();
    let hour = |t: &OffsetDateTime| t.unix_timestamp().div_euclid(3600);
    let day = |t: &OffsetDateTime| t.unix_timestamp().div_euclid(86_400);
    let (mut hours, mut days) = (Vec::new(), Vec::new());
    for (i, (id, t)) in sorted.iter().enumerate() {
        let mut why = Vec::new();
        if i == 0 {
            why.push(KeepReason::Newest);
        }
        if (i as u64) < u64::from(policy.keep_last) {
            why.push(KeepReason::Last);
        }
        if bucket(&mut hours, hour(t), policy.keep_hourly) {
            why.push(KeepReason::Hourly);
        }
        if bucket(&mut days, day(t), policy.keep_daily) {
            why.push(KeepReason::Daily);
        }
        if why.is_empty() {
            plan.forget.push(id.clone());
        } else {
            plan.keep.insert(id.clone(), why);
        }
    }
    plan
}

/// Walking newest first: keeps the first snapshot of each new bucket while fewer than `n`
/// buckets were taken.
fn bucket(taken: &mut Vec<i64>, b: i64, n: u32) -> bool {
    if taken.len() as u64 >= u64::from(n) || taken.last() == Some(&b) {
        return false;
    }
    taken.push(b);
    true
}

#[cfg(test)]
mod tests;
