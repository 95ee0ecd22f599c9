//! The one place that picks the adapters of the state instances may share:
//! in this process, or in Redis when `REDIS_URL` is set (docs/scaling.md).

use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::Context as _;
use parley_application::{LocalSpiritDesk, RateLimiter, SpiritDesk};
use parley_redis::{Redis, RedisRateLimiter, RedisRoomBroker, RedisSpiritDesk, RoomSettings};
use parley_sessions::RoomBroker;

use crate::Settings;

/// The chat budget, the room broker and the spirit's desk, and Redis if they live there.
pub(crate) struct Shared {
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub broker: Arc<dyn RoomBroker>,
    pub spirit_desk: Arc<dyn SpiritDesk>,
    pub redis: Option<Redis>,
}

/// In-process adapters without `REDIS_URL`; Redis ones with it, the chat
/// budget falling back to the in-process limiter while Redis is unreachable.
/// With Redis it must run on the tokio runtime: the broker subscribes at once.
pub(crate) fn shared(settings: &Settings) -> anyhow::Result<Shared> {
    let per_minute = NonZeroU32::new(settings.rate_limit_per_minute).context("RATE_LIMIT_PER_MINUTE")?;
    let local: Arc<dyn RateLimiter> = Arc::new(crate::rate_limit::GovernorRateLimiter::new(per_minute));
    let Some(url) = &settings.redis_url else {
        return Ok(Shared {
            rate_limiter: local,
            broker: Arc::new(crate::rooms::LocalRoomBroker::new()),
            spirit_desk: Arc::new(LocalSpiritDesk::default()),
            redis: None,
        });
    };
    let redis = Redis::open(url, &settings.redis_key_prefix).context("REDIS_URL is not a Redis URL")?;
    let broker = RedisRoomBroker::new(redis.clone(), RoomSettings { seat_lease: settings.redis_seat_lease });
    Ok(Shared {
        rate_limiter: Arc::new(RedisRateLimiter::new(redis.clone(), per_minute.get(), local)),
        broker,
        spirit_desk: Arc::new(RedisSpiritDesk::new(redis.clone())),
        redis: Some(redis),
    })
}
