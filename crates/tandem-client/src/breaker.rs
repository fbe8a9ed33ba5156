//! A region's circuit breaker, as a pure state machine: the caller passes the time and the
//! random numbers, so every transition is tested on paused time with fixed jitter.
//!
//! Closed → (N consecutive failed calls, or a failure ratio over the window) → Open for
//! `min(open_max, open_base·2^k)·(1 − jitter·u)` (k = trips in a row) → HalfOpen when the
//! period ends and the prober sends `GET /readyz` → Recovering on success (the region serves
//! only when no closed region is left) → Closed after `failback_after` of successful probes,
//! which is the failback. A failed probe, or a failed call while recovering, trips it again.
//! With no failback delay (the breaker of one node of a region, whose nodes are alike), the
//! first successful probe closes it.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::config::Policy;

/// A region's state as seen from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum BreakerState {
    /// Healthy: takes traffic in priority order.
    Closed,
    /// Tripped: skipped until its open period ends.
    Open,
    /// Its open period ended; the prober is checking `/readyz`.
    HalfOpen,
    /// Probes succeed; takes traffic only when no closed region is left, until failback.
    Recovering,
}

impl BreakerState {
    /// The value of the `breaker_state` gauge: 0 closed, 1 open, 2 half-open or recovering.
    pub fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen | BreakerState::Recovering => 2,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { since: Instant },
    Open { until: Instant },
    HalfOpen,
    Recovering { since: Instant },
}

/// What a probe result did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeEffect {
    /// Nothing changed state-wise.
    Nothing,
    /// The region started recovering.
    Recovering,
    /// The region has been healthy long enough: traffic returns to it.
    FailedBack,
    /// The probe failed: open again for this long.
    Tripped(Duration),
}

/// One region's breaker.
#[derive(Debug)]
pub struct Breaker {
    consecutive_limit: u32,
    ratio: f64,
    window: Duration,
    min_requests: usize,
    open_base: Duration,
    open_max: Duration,
    jitter: f64,
    state: State,
    consecutive: u32,
    trips_in_row: u32,
    outcomes: VecDeque<(Instant, bool)>,
}

impl Breaker {
    /// A closed breaker configured from the policy.
    pub fn new(p: &Policy, now: Instant) -> Self {
        Breaker {
            consecutive_limit: p.breaker_consecutive_failures,
            ratio: p.breaker_failure_ratio,
            window: Duration::from_millis(p.breaker_window_ms),
            min_requests: p.breaker_min_requests as usize,
            open_base: Duration::from_millis(p.breaker_open_base_ms),
            open_max: Duration::from_millis(p.breaker_open_max_ms),
            jitter: p.breaker_jitter,
            state: State::Closed { since: now },
            consecutive: 0,
            trips_in_row: 0,
            outcomes: VecDeque::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        match self.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
            State::Recovering { .. } => BreakerState::Recovering,
        }
    }

    /// Consecutive failed calls since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive
    }

    /// How long the region has been closed or recovering (zero otherwise).
    pub fn healthy_for(&self, now: Instant) -> Duration {
        match self.state {
            State::Closed { since } | State::Recovering { since } => {
                now.saturating_duration_since(since)
            }
            _ => Duration::ZERO,
        }
    }

    /// The open period of the next trip, before jitter: `min(open_max, open_base·2^k)`.
    pub fn open_ceiling(&self) -> Duration {
        let factor = 1u32
            .checked_shl(self.trips_in_row.min(31))
            .unwrap_or(u32::MAX);
        self.open_base.saturating_mul(factor).min(self.open_max)
    }

    fn trip(&mut self, now: Instant, unit: f64) -> Duration {
        let open_for = self
            .open_ceiling()
            .mul_f64(1.0 - self.jitter * unit.clamp(0.0, 1.0));
        self.trips_in_row = self.trips_in_row.saturating_add(1);
        self.state = State::Open {
            until: now + open_for,
        };
        self.consecutive = 0;
        self.outcomes.clear();
        open_for
    }

    fn record(&mut self, now: Instant, ok: bool) {
        self.outcomes.push_back((now, ok));
        while let Some(&(t, _)) = self.outcomes.front() {
            if now.saturating_duration_since(t) > self.window {
                self.outcomes.pop_front();
            } else {
                break;
            }
        }
    }

    /// A call to the region succeeded (or was answered, even with a caller error).
    pub fn on_success(&mut self, now: Instant) {
        self.consecutive = 0;
        self.record(now, true);
    }

    /// A call to the region failed; returns the open period if this tripped the breaker.
    pub fn on_failure(&mut self, now: Instant, unit: f64) -> Option<Duration> {
        self.consecutive = self.consecutive.saturating_add(1);
        self.record(now, false);
        match self.state {
            State::Recovering { .. } => Some(self.trip(now, unit)),
            State::Closed { .. } => {
                let failures = self.outcomes.iter().filter(|(_, ok)| !ok).count();
                let n = self.outcomes.len();
                let by_ratio = n >= self.min_requests && failures as f64 >= self.ratio * n as f64;
                (self.consecutive >= self.consecutive_limit || by_ratio)
                    .then(|| self.trip(now, unit))
            }
            State::Open { .. } | State::HalfOpen => None,
        }
    }

    /// Trips a closed or recovering breaker at once (fail-fast on a hung region).
    pub fn force_trip(&mut self, now: Instant, unit: f64) -> Option<Duration> {
        match self.state {
            State::Closed { .. } | State::Recovering { .. } => Some(self.trip(now, unit)),
            State::Open { .. } | State::HalfOpen => None,
        }
    }

    /// Whether the prober should check this region now (moves Open to HalfOpen when due).
    pub fn probe_due(&mut self, now: Instant) -> bool {
        match self.state {
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen;
                true
            }
            State::HalfOpen | State::Recovering { .. } => true,
            _ => false,
        }
    }

    /// Applies a probe's result.
    pub fn on_probe(
        &mut self,
        ok: bool,
        now: Instant,
        failback_after: Duration,
        unit: f64,
    ) -> ProbeEffect {
        match (self.state, ok) {
            (State::HalfOpen | State::Recovering { .. }, false) => {
                ProbeEffect::Tripped(self.trip(now, unit))
            }
            // No failback delay (a node of a region): the first good probe closes it.
            (State::HalfOpen, true) if failback_after.is_zero() => {
                self.state = State::Closed { since: now };
                self.trips_in_row = 0;
                self.consecutive = 0;
                ProbeEffect::FailedBack
            }
            (State::HalfOpen, true) => {
                self.state = State::Recovering { since: now };
                ProbeEffect::Recovering
            }
            (State::Recovering { since }, true)
                if now.saturating_duration_since(since) >= failback_after =>
            {
                self.state = State::Closed { since };
                self.trips_in_row = 0;
                self.consecutive = 0;
                ProbeEffect::FailedBack
            }
            _ => ProbeEffect::Nothing,
        }
    }
}
