//! Time, injected: every decision that reads the time in Rust (token lifetimes, `exp`,
//! `nbf` and `iat` checks, DPoP windows, the client's refresh timing) asks a [`Clock`]
//! instead of the system, so tests move time forward instead of sleeping. `clippy.toml`
//! forbids the direct calls everywhere else.
//!
//! Session decisions are made by Lua scripts on the Redis server's own clock (one clock
//! for every replica); the services pass [`Clock::offset_ms`] to those scripts, which add
//! it to Redis' `TIME`. It is 0 in production, so tests that advance a [`TestClock`]
//! move the scripts' time by as much.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Seconds since the Unix epoch.
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }

    /// How far this clock runs ahead of the real one, in milliseconds: what the Redis
    /// scripts add to the server's `TIME`. 0 for the system clock.
    fn offset_ms(&self) -> i64 {
        0
    }
}

/// A clock to share between the parts of a service.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock: what runs in production.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// A shared system clock.
    pub fn shared() -> SharedClock {
        Arc::new(Self)
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one place that reads the system clock.
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            })
    }
}

/// A clock for tests: the system's time plus an offset the test moves forward, so time
/// still passes by itself but a test can skip an hour at once.
#[derive(Debug, Default)]
pub struct TestClock {
    offset_ms: AtomicI64,
}

impl TestClock {
    /// A clock at the system's time, to be advanced.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        SystemClock.now_ms().saturating_add(self.offset_ms())
    }

    fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_forward_when_told_and_says_by_how_much() {
        let clock = TestClock::new();
        let before = clock.now_ms();
        assert_eq!(clock.offset_ms(), 0);

        clock.advance(Duration::from_secs(3600));

        assert!(clock.now_ms() - before >= 3_600_000);
        assert_eq!(clock.offset_ms(), 3_600_000);
        assert_eq!(clock.now_secs(), clock.now_ms().div_euclid(1000));
        assert_eq!(SystemClock.offset_ms(), 0);
    }
}
