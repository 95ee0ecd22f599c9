//! `RedisSpiritDesk`: one spirit reply in flight per room across every
//! instance. The instance whose message finds the room free takes its lease
//! and answers; messages said meanwhile, through any instance, wait in the
//! room's list and are folded into the holder's next reply.

use std::time::Duration;

use async_trait::async_trait;
use parley_application::SpiritDesk;
use parley_kernel::{RoomId, RoomMessageId, StoreError};

use crate::Redis;

/// How long a room's hold outlives its holder's last batch: an instance that
/// crashed mid-reply leaves the room without a spirit at most this long.
/// Longer than the longest reply (`LLM_REPLY_TIMEOUT_SECONDS`, 120 s).
pub const SPIRIT_LEASE: Duration = Duration::from_secs(180);

/// KEYS[1] the hold, KEYS[2] the waiting messages; ARGV[1] the lease ms, ARGV[2] the message.
const HEARD: &str = r"
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
";

/// Takes the waiting messages and renews the hold; none releases it.
const TAKE: &str = r"
local waiting = redis.call('LRANGE', KEYS[2], 0, -1)
if #waiting == 0 then
  redis.call('DEL', KEYS[1])
  return {}
end
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return waiting
";

const RELEASE: &str = r"
redis.call('DEL', KEYS[1], KEYS[2])
return 1
";

pub struct RedisSpiritDesk {
    redis: Redis,
    heard: redis::Script,
    take: redis::Script,
    release: redis::Script,
}

impl RedisSpiritDesk {
    #[must_use]
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            heard: redis::Script::new(HEARD),
            take: redis::Script::new(TAKE),
            release: redis::Script::new(RELEASE),
        }
    }

    fn keys(&self, room_id: RoomId) -> [String; 2] {
        ["hold", "waiting"].map(|k| self.redis.key(&format!("spirit:{{{room_id}}}:{k}")))
    }
}

fn lease_ms() -> String {
    SPIRIT_LEASE.as_millis().to_string()
}

#[async_trait]
impl SpiritDesk for RedisSpiritDesk {
    async fn heard(&self, room_id: RoomId, message: RoomMessageId) -> Result<bool, StoreError> {
        let [hold, waiting] = self.keys(room_id);
        let held: i64 = self.redis.run(&self.heard, &[&hold, &waiting], &[&lease_ms(), &message.to_string()]).await?;
        Ok(held == 1)
    }

    async fn take(&self, room_id: RoomId) -> Result<Vec<RoomMessageId>, StoreError> {
        let [hold, waiting] = self.keys(room_id);
        let taken: Vec<String> = self.redis.run(&self.take, &[&hold, &waiting], &[&lease_ms()]).await?;
        Ok(taken.iter().filter_map(|id| id.parse().ok()).collect())
    }

    async fn release(&self, room_id: RoomId) {
        let [hold, waiting] = self.keys(room_id);
        if let Err(error) = self.redis.run::<i64>(&self.release, &[&hold, &waiting], &[]).await {
            tracing::warn!(error = %error, "could not release a room's spirit; its lease will end it");
        }
    }
}
