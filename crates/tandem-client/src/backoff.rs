//! Capped exponential backoff with full jitter, and the retry budget that keeps retries from
//! turning an outage into a storm.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Capped exponential backoff with full jitter.
///
/// The delay before retry `n` (0 for the first retry) is
/// `delay_n = random(0, min(cap, base·2^n))`, and `max(delay_n, Retry-After)` when the region
/// sent a `Retry-After`.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// `base`.
    pub base: Duration,
    /// `cap`.
    pub cap: Duration,
}

impl Backoff {
    /// The ceiling `min(cap, base·2^n)` of retry `n`.
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The delay of retry `n`, with `unit` a uniform random number in `[0, 1)`.
    pub fn delay(&self, n: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        let jittered = self.ceiling(n).mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(ra) => jittered.max(ra),
            None => jittered,
        }
    }
}

/// A token bucket of retries: each request deposits `ratio` tokens, each retry withdraws one,
/// and `min_per_sec` tokens flow in every second whatever the traffic. The bucket holds at most
/// `min_per_sec + ratio·100` tokens, so an idle client cannot save up a storm.
#[derive(Debug)]
pub struct RetryBudget {
    ratio: f64,
    min_per_sec: f64,
    capacity: f64,
    state: Mutex<(f64, Instant)>,
}

impl RetryBudget {
    /// A full budget.
    pub fn new(ratio: f64, min_per_sec: u32) -> Self {
        let capacity = (min_per_sec as f64 + ratio * 100.0).max(1.0);
        RetryBudget {
            ratio,
            min_per_sec: min_per_sec as f64,
            capacity,
            state: Mutex::new((min_per_sec as f64, Instant::now())),
        }
    }

    fn refill(&self, s: &mut (f64, Instant)) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + elapsed * self.min_per_sec).min(self.capacity);
        s.1 = now;
    }

    /// Records one request.
    pub fn deposit(&self) {
        let mut s = self.state.lock().expect("budget lock");
        self.refill(&mut s);
        s.0 = (s.0 + self.ratio).min(self.capacity);
    }

    /// Takes one retry from the budget; false when it is spent.
    pub fn withdraw(&self) -> bool {
        let mut s = self.state.lock().expect("budget lock");
        self.refill(&mut s);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }

    /// Tokens left (for tests and status).
    pub fn balance(&self) -> f64 {
        let mut s = self.state.lock().expect("budget lock");
        self.refill(&mut s);
        s.0
    }
}
