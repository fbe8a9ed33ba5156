//! Replication lag as the regions measure it: each region observes, for every speaker change it
//! applies from its pair, the time from the change's commit at the pair to its apply here
//! (`tandem_replication_lag_seconds`, a histogram on `/metrics`). The drill reads that
//! histogram before and after the load; the difference is the run's.

use serde::{Deserialize, Serialize};

const METRIC: &str = "tandem_replication_lag_seconds";

/// A Prometheus histogram: cumulative buckets `(le, count)` in ascending `le`, sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// `(upper bound, cumulative count)`; the last bound is `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    /// Sum of the observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

/// Reads [`METRIC`] out of a `/metrics` text (exposition format 0.0.4); `None` without it.
pub fn parse(text: &str) -> Option<Histogram> {
    let mut h = Histogram::default();
    let mut seen = false;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(METRIC) else {
            continue;
        };
        let value = |s: &str| {
            s.rsplit(' ')
                .next()
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        if let Some(rest) = rest.strip_prefix("_bucket{") {
            let le = rest.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            h.buckets.push((le, value(rest)? as u64));
            seen = true;
        } else if rest.starts_with("_sum") {
            h.sum = value(rest)?;
        } else if rest.starts_with("_count") {
            h.count = value(rest)? as u64;
        }
    }
    h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    seen.then_some(h)
}

impl Histogram {
    /// What was observed after `start`: the difference, or all of `self` when the region
    /// restarted in between (its counts went down, or its buckets changed).
    pub fn since(&self, start: Option<&Histogram>) -> (Histogram, bool) {
        let Some(s) = start else {
            return (self.clone(), false);
        };
        let same_buckets = s.buckets.len() == self.buckets.len()
            && s.buckets.iter().zip(&self.buckets).all(|(a, b)| a.0 == b.0);
        if !same_buckets || self.count < s.count {
            return (self.clone(), true);
        }
        let buckets = s
            .buckets
            .iter()
            .zip(&self.buckets)
            .map(|(a, b)| (b.0, b.1.saturating_sub(a.1)))
            .collect();
        let h = Histogram {
            buckets,
            sum: (self.sum - s.sum).max(0.0),
            count: self.count - s.count,
        };
        (h, false)
    }

    /// The smallest bucket bound under which at least `q` (0..1) of the observations fall: an
    /// upper bound of the quantile (`None` without observations, or past the last finite bound).
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let want = (q * self.count as f64).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, c)| *c >= want)
            .map(|(le, _)| *le)
            .filter(|le| le.is_finite())
    }
}

/// Replication lag into one region over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LagSeen {
    /// The pair's changes applied here during the run.
    pub changes: u64,
    /// Their mean commit-to-apply lag, seconds.
    pub mean_secs: Option<f64>,
    /// Upper bound of their p99 lag (a histogram bucket bound), seconds.
    pub p99_at_most_secs: Option<f64>,
    /// The region restarted during the run: the figures cover its last incarnation only.
    pub restarted: bool,
}

impl LagSeen {
    /// The run's lag from a region's histogram before (`None`: not read) and after the load.
    pub fn between(start: Option<&Histogram>, end: &Histogram) -> Self {
        let (h, restarted) = end.since(start);
        LagSeen {
            changes: h.count,
            mean_secs: (h.count > 0).then(|| h.sum / h.count as f64),
            p99_at_most_secs: h.quantile_bound(0.99),
            restarted,
        }
    }
}
