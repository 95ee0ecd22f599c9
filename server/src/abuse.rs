//! Login and registration abuse limits: failed logins per account, login
//! attempts and registrations per client address (API.md, 429 `RATE_LIMITED`).
//!
//! Each limit is a keyed GCRA ("generic cell rate algorithm", the one governor
//! uses for the chat budget): `limit` events per `window`, spread evenly, with
//! the whole `limit` allowed at once. Written here rather than with governor
//! because a login must ask "is this account locked?" without spending, and
//! spend only when the password turns out wrong.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::LoginLimits;

/// Entries are swept of expired keys once the map holds this many.
const SWEEP_AT: usize = 4096;

/// `limit` events per `window` for each key.
pub struct Throttle<K> {
    interval: Duration,
    window: Duration,
    /// Each key's theoretical arrival time: when its budget is whole again.
    state: Mutex<HashMap<K, Instant>>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    #[must_use]
    pub fn new(limit: u32, window: Duration) -> Self {
        Self { interval: window / limit.max(1), window, state: Mutex::new(HashMap::new()) }
    }

    /// Whether `key` may have one more event now, without spending it;
    /// `Err(seconds)` to wait when it may not.
    pub fn check(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        let state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.decide(state.get(key).copied(), now).map(|_| ())
    }

    /// Spends one event of `key`'s budget; `Err(seconds)` (nothing spent) when it is used up.
    pub fn spend(&self, key: &K) -> Result<(), u64> {
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = self.decide(state.get(key).copied(), now)?;
        if state.len() >= SWEEP_AT && !state.contains_key(key) {
            state.retain(|_, tat| *tat > now);
        }
        state.insert(key.clone(), next);
        Ok(())
    }

    /// The key's next arrival time if one more event fits, else the wait.
    fn decide(&self, tat: Option<Instant>, now: Instant) -> Result<Instant, u64> {
        let tat = tat.map_or(now, |tat| tat.max(now));
        let next = tat + self.interval;
        let ahead = next.saturating_duration_since(now);
        if ahead <= self.window { Ok(next) } else { Err((ahead - self.window).as_secs_f64().ceil().max(1.0) as u64) }
    }
}

/// The three limits of the auth endpoints.
pub struct AuthThrottle {
    failures_per_account: Throttle<String>,
    attempts_per_address: Throttle<IpAddr>,
    registrations_per_address: Throttle<IpAddr>,
}

impl AuthThrottle {
    #[must_use]
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            failures_per_account: Throttle::new(limits.failures_per_account, Duration::from_secs(15 * 60)),
            attempts_per_address: Throttle::new(limits.attempts_per_address, Duration::from_secs(60)),
            registrations_per_address: Throttle::new(limits.registrations_per_address, Duration::from_secs(3600)),
        }
    }

    /// Spends a login attempt of `address`, then checks that `email`'s
    /// account is not locked by failures. The answer is the same whether or
    /// not the account exists.
    pub fn login_attempt(&self, address: Option<IpAddr>, email: &str) -> Result<(), u64> {
        if let Some(address) = address {
            self.attempts_per_address.spend(&address).inspect_err(|_| crate::metrics::refused("login_address"))?;
        }
        self.failures_per_account.check(&account_key(email)).inspect_err(|_| crate::metrics::refused("login_account"))
    }

    /// Records a failed login of `email`'s account (existing or not).
    pub fn login_failed(&self, email: &str) {
        let _ = self.failures_per_account.spend(&account_key(email));
    }

    /// Spends a registration of `address`.
    pub fn registration(&self, address: Option<IpAddr>) -> Result<(), u64> {
        address.map_or(Ok(()), |address| {
            self.registrations_per_address.spend(&address).inspect_err(|_| crate::metrics::refused("registration"))
        })
    }
}

/// Accounts are keyed as emails are stored: trimmed and lower-cased.
fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_budget_is_allowed_at_once_then_refused_with_a_wait() {
        let throttle = Throttle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(throttle.spend(&"a"), Ok(()));
        }
        let wait = throttle.spend(&"a").err();
        assert!(wait.is_some_and(|s| (1..=20).contains(&s)), "{wait:?}");
        assert_eq!(throttle.spend(&"b"), Ok(()), "budgets are per key");
    }

    #[test]
    fn check_does_not_spend() {
        let throttle = Throttle::new(1, Duration::from_secs(60));
        for _ in 0..5 {
            assert_eq!(throttle.check(&"a"), Ok(()));
        }
        assert_eq!(throttle.spend(&"a"), Ok(()));
        assert!(throttle.check(&"a").is_err());
    }

    #[test]
    fn failures_lock_the_account_whatever_the_case_of_its_email() {
        let limits = LoginLimits { failures_per_account: 2, attempts_per_address: 100, registrations_per_address: 1 };
        let throttle = AuthThrottle::new(limits);
        let address = Some(IpAddr::from([127, 0, 0, 1]));
        throttle.login_failed("Ann@Example.com");
        throttle.login_failed("ann@example.com ");
        assert!(throttle.login_attempt(address, "ANN@example.com").is_err());
        assert!(throttle.login_attempt(address, "bob@example.com").is_ok());
        assert!(throttle.registration(address).is_ok());
        assert!(throttle.registration(address).is_err());
    }
}
