//! The hybrid logical clock that stamps every speaker change ([`Hlc`]).
//!
//! An HLC follows wall-clock milliseconds when they move forward, and a logical counter when they
//! do not (the clock stepped back, or many stamps in one millisecond), so stamps from one store
//! are strictly increasing. Observing a peer's stamp moves the clock past it, so a change made
//! after seeing another one is ordered after it even when the two hosts' clocks disagree.
//!
//! [`HlcClock`] holds the pure logic: physical time is an argument ([`HlcClock::tick`]), which
//! keeps it testable on controlled time; [`HlcClock::now`] reads the system clock.

use std::sync::Mutex;

use crate::Hlc;

/// Bits of an [`Hlc`] that hold the logical counter.
const LOGICAL_BITS: u32 = 16;

impl Hlc {
    /// The stamp for `ms` milliseconds since the epoch with logical counter `logical`.
    pub fn from_parts(ms: u64, logical: u16) -> Hlc {
        Hlc((ms << LOGICAL_BITS) | u64::from(logical))
    }

    /// Its physical part: milliseconds since the Unix epoch.
    pub fn ms(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// Its logical counter.
    pub fn logical(self) -> u16 {
        // Truncation is the point: the low 16 bits.
        (self.0 & 0xffff) as u16
    }
}

/// A hybrid logical clock: every stamp it hands out is greater than every stamp it handed out
/// or observed before. Shared by all of a store's writers.
#[derive(Debug, Default)]
pub struct HlcClock {
    last: Mutex<u64>,
}

impl HlcClock {
    /// A clock whose next stamp is greater than `last` (e.g. the newest stamp in a database).
    pub fn starting_after(last: Hlc) -> HlcClock {
        HlcClock {
            last: Mutex::new(last.0),
        }
    }

    /// A new stamp at physical time `physical_ms`: `max(physical_ms << 16, last + 1)`. A full
    /// logical counter carries into the next millisecond, which is harmless.
    pub fn tick(&self, physical_ms: u64) -> Hlc {
        let mut last = self.lock();
        let next = (physical_ms << LOGICAL_BITS).max(last.saturating_add(1));
        *last = next;
        Hlc(next)
    }

    /// A new stamp at the system clock's time.
    pub fn now(&self) -> Hlc {
        self.tick(system_ms())
    }

    /// Records a stamp seen elsewhere, so that every later stamp is greater.
    pub fn observe(&self, remote: Hlc) {
        let mut last = self.lock();
        *last = (*last).max(remote.0);
    }

    /// The newest stamp handed out or observed.
    pub fn last(&self) -> Hlc {
        Hlc(*self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        // The guarded value is a plain integer, always valid: a panic elsewhere cannot corrupt it.
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Milliseconds since the Unix epoch (0 before it).
fn system_ms() -> u64 {
    let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    u64::try_from(nanos).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_physical_time_when_it_moves_forward() {
        let c = HlcClock::default();
        assert_eq!(c.tick(1_000), Hlc::from_parts(1_000, 0));
        assert_eq!(c.tick(1_005), Hlc::from_parts(1_005, 0));
    }

    #[test]
    fn counts_logically_within_one_millisecond() {
        let c = HlcClock::default();
        let a = c.tick(1_000);
        let b = c.tick(1_000);
        assert_eq!(b, Hlc::from_parts(1_000, 1));
        assert!(b > a);
    }

    #[test]
    fn stays_monotonic_when_the_clock_goes_backwards() {
        let c = HlcClock::default();
        let a = c.tick(2_000);
        let b = c.tick(1_000);
        let d = c.tick(1_500);
        assert!(a < b && b < d, "{a:?} < {b:?} < {d:?}");
        assert_eq!(b, Hlc::from_parts(2_000, 1));
        assert_eq!(c.tick(3_000), Hlc::from_parts(3_000, 0), "catches up");
    }

    #[test]
    fn observing_a_future_stamp_orders_later_stamps_after_it() {
        let c = HlcClock::default();
        c.tick(1_000);
        let remote = Hlc::from_parts(9_000, 7);
        c.observe(remote);
        let next = c.tick(1_001);
        assert!(next > remote);
        assert_eq!(next, Hlc::from_parts(9_000, 8));
        c.observe(Hlc::from_parts(5, 0));
        assert!(c.tick(1_002) > next, "observing the past changes nothing");
    }

    #[test]
    fn logical_overflow_carries_into_the_next_millisecond() {
        let c = HlcClock::starting_after(Hlc::from_parts(1_000, u16::MAX));
        let next = c.tick(1_000);
        assert_eq!(next, Hlc::from_parts(1_001, 0));
        assert_eq!((next.ms(), next.logical()), (1_001, 0));
    }

    #[test]
    fn starting_after_a_stored_stamp() {
        let stored = Hlc::from_parts(50_000, 3);
        let c = HlcClock::starting_after(stored);
        assert_eq!(c.last(), stored);
        assert!(c.tick(10) > stored);
    }
}
