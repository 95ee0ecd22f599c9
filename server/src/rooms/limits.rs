//! Per-connection flood control: a token bucket.

use std::time::Instant;

/// Allows `burst` actions at once, refilled at `per_second`.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    #[must_use]
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            capacity: f64::from(burst),
            per_second: f64::from(per_second),
            tokens: f64::from(burst),
            updated: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn take_at(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated);
        self.updated = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut bucket = TokenBucket::new(5, 10);
        let start = bucket.updated;
        assert_eq!((0..12).filter(|_| bucket.take_at(start)).count(), 10);
        assert!(!bucket.take_at(start + Duration::from_millis(100)));
        assert!(bucket.take_at(start + Duration::from_millis(300)));
    }
}
