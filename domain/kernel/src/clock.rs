//! The clock port, so time can be fixed in tests.

use crate::Timestamp;

/// Tells the current time.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait Clock: Send + Sync {
    /// The current instant, UTC, truncated to microseconds (what every store keeps).
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let now = chrono::Utc::now();
        let micros = now.timestamp_micros();
        chrono::DateTime::from_timestamp_micros(micros).unwrap_or(now)
    }
}
