//! Time, real or simulated.
//!
//! The engine asks a [`Clock`] for the time and never calls `Instant::now()`
//! itself, so a simulated run can cover a 24-hour rebuild in milliseconds and
//! tests never sleep.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub trait Clock {
    /// Milliseconds since the run's clock started (monotonic).
    fn now_ms(&self) -> u64;
    /// Wall-clock time for the journal, as Unix milliseconds.
    fn wall_ms(&self) -> u64;
}

/// The real clock.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    start: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        SystemClock {
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn wall_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// A simulated clock shared between the simulator (which advances it) and the
/// engine (which reads it). Wall time is pinned so journals are reproducible.
#[derive(Clone, Debug, Default)]
pub struct SimClock {
    now: Rc<Cell<u64>>,
}

/// 2026-01-01T00:00:00Z, the simulated wall clock's origin.
pub const SIM_EPOCH_MS: u64 = 1_767_225_600_000;

impl SimClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by.as_millis() as u64);
    }
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }

    fn wall_ms(&self) -> u64 {
        SIM_EPOCH_MS + self.now.get()
    }
}
