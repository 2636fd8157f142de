//! The gateway's wall clock, injectable so time-dependent rules (time
//! windows, quota periods) can be tested without waiting.

use std::sync::atomic::{AtomicI64, Ordering};

/// Wall-clock time as policies see it.
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// Now, Unix seconds.
    fn now_secs(&self) -> i64;

    /// Now, Unix milliseconds (a manual clock moves in whole seconds).
    fn now_ms(&self) -> i64 {
        self.now_secs().saturating_mul(1000)
    }
}

/// The system clock (the default everywhere outside tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_secs(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock reading `secs`.
    pub fn at(secs: i64) -> Self {
        Self(AtomicI64::new(secs))
    }

    /// Sets the time.
    pub fn set(&self, secs: i64) {
        self.0.store(secs, Ordering::Release);
    }

    /// Moves the time forward by `secs`.
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::AcqRel);
    }
}

impl Clock for ManualClock {
    fn now_secs(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }
}
