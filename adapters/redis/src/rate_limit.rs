//! The chat/ChatKit budget in Redis: GCRA (the generic cell rate algorithm,
//! what the in-process governor limiter runs too) in one Lua script, so every
//! instance spends one budget per user, atomically. While Redis cannot be
//! reached each instance answers from its own in-process limiter and tries
//! Redis again every [`RETRY_EVERY`].

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parley_application::{RateDecision, RateLimiter};
use parley_kernel::UserId;

use crate::Redis;

/// While Redis is unreachable, checks go straight to the local limiter and
/// one in this long tries Redis again: a down Redis costs a request nothing,
/// and a returning one is used again within this.
pub const RETRY_EVERY: Duration = Duration::from_secs(1);

/// GCRA on Redis's clock, in microseconds. KEYS[1]: the user's theoretical
/// arrival time (TAT). ARGV[1]: the emission interval (one request's worth
/// of refill), ARGV[2]: the burst (the limit). Returns {allowed, remaining,
/// microseconds until one more is allowed}.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, 0, math.ceil(allow_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, math.floor((interval * burst - (new_tat - now)) / interval + 0.000001), 0}
";

/// `per_minute` requests a minute per user across every instance.
pub struct RedisRateLimiter {
    redis: Redis,
    script: redis::Script,
    per_minute: u32,
    /// Answers while Redis cannot be reached.
    local: Arc<dyn RateLimiter>,
    /// Since when Redis has been unreachable, and when it was last tried.
    down: Mutex<Option<Instant>>,
}

impl RedisRateLimiter {
    #[must_use]
    pub fn new(redis: Redis, per_minute: u32, local: Arc<dyn RateLimiter>) -> Self {
        Self { redis, script: redis::Script::new(GCRA), per_minute: per_minute.max(1), local, down: Mutex::new(None) }
    }

    fn interval_micros(&self) -> f64 {
        60_000_000.0 / f64::from(self.per_minute)
    }

    /// Whether to try Redis now: always while it is up, once per [`RETRY_EVERY`] while down.
    fn should_try(&self) -> bool {
        let mut down = self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match *down {
            Some(tried) if tried.elapsed() < RETRY_EVERY => false,
            Some(_) => {
                *down = Some(Instant::now());
                true
            }
            None => true,
        }
    }

    fn mark(&self, reachable: bool) {
        let mut down = self.down.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match (down.is_some(), reachable) {
            (true, true) => {
                *down = None;
                tracing::info!("Redis is reachable again: the chat budget is shared again");
            }
            (false, false) => {
                *down = Some(Instant::now());
                tracing::warn!("Redis is unreachable: each instance keeps its own chat budget until it returns");
            }
            _ => {}
        }
    }

    async fn check_redis(&self, user: UserId) -> Result<RateDecision, parley_kernel::StoreError> {
        let key = self.redis.key(&format!("rl:{user}"));
        let interval = format!("{:.3}", self.interval_micros());
        let burst = self.per_minute.to_string();
        let (allowed, remaining, wait): (u8, u32, u64) =
            self.redis.run(&self.script, &[&key], &[&interval, &burst]).await?;
        let seconds_per_request = 60.0 / f64::from(self.per_minute);
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // small, positive
        let refill = |missing: u32| (f64::from(missing) * seconds_per_request).ceil() as u64;
        Ok(if allowed == 1 {
            RateDecision {
                allowed: true,
                limit: self.per_minute,
                remaining,
                reset_seconds: refill(self.per_minute.saturating_sub(remaining)),
                retry_after_seconds: 0,
            }
        } else {
            RateDecision {
                allowed: false,
                limit: self.per_minute,
                remaining: 0,
                reset_seconds: refill(self.per_minute),
                retry_after_seconds: wait.div_ceil(1_000_000).max(1),
            }
        })
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, user: UserId) -> RateDecision {
        if self.should_try() {
            match self.check_redis(user).await {
                Ok(decision) => {
                    self.mark(true);
                    return decision;
                }
                Err(error) => {
                    tracing::debug!(error = %error, "the shared chat budget could not be checked");
                    self.mark(false);
                }
            }
        }
        metrics::counter!("redis_fallback_total", "what" => "rate_limit").increment(1);
        self.local.check(user).await
    }
}
