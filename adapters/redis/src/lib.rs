//! Redis adapters: what several server instances must share. The chat and
//! ChatKit budget ([`RedisRateLimiter`]) and séance rooms — fan-out, seats
//! and presence ([`RedisRoomBroker`]) — and the spirit's one reply in flight
//! per room ([`RedisSpiritDesk`]). Every change of shared state is one
//! Lua script, so it is atomic across instances. docs/scaling.md tells what
//! each Redis failure does; docs/decisions/0009 why it is built this way.

mod rate_limit;
mod rooms;
mod spirit;

use std::sync::Arc;
use std::time::Duration;

use parley_kernel::StoreError;
use redis::aio::ConnectionManager;

pub use rate_limit::RedisRateLimiter;
pub use rooms::{RedisRoomBroker, RoomSettings};
pub use spirit::{RedisSpiritDesk, SPIRIT_LEASE};

/// How long one Redis command may take before it counts as Redis being
/// unreachable: well below the 2 s within which the API answers a failure.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// One Redis server and the key prefix this deployment's keys live under.
/// Cheap to clone; connects lazily, reconnects by itself.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    commands: ConnectionManager,
    prefix: String,
}

impl Redis {
    /// A connection to `url` (`redis://host:port/db`), made on first use so a
    /// server may start while Redis is down; every key starts with `prefix`.
    ///
    /// # Errors
    /// If `url` is not a Redis URL.
    pub fn open(url: &str, prefix: &str) -> redis::RedisResult<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let commands = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        Ok(Self { inner: Arc::new(Inner { client, commands, prefix: prefix.to_owned() }) })
    }

    /// `prefix` + `rest`.
    pub(crate) fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.inner.prefix)
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// Runs `script` with `keys` and `args`, within [`COMMAND_TIMEOUT`].
    pub(crate) async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut connection = self.inner.commands.clone();
        match tokio::time::timeout(COMMAND_TIMEOUT * 2, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(error)),
            Err(_) => Err(StoreError::unavailable("Redis did not answer in time")),
        }
    }

    /// Whether Redis answers a `PING` within [`COMMAND_TIMEOUT`].
    pub async fn ping(&self) -> bool {
        let mut connection = self.inner.commands.clone();
        let ping = redis::cmd("PING");
        matches!(tokio::time::timeout(COMMAND_TIMEOUT, ping.query_async::<String>(&mut connection)).await, Ok(Ok(_)))
    }
}

/// Unreachable (I/O, timeouts, a server restarting) or anything else.
fn classify(error: redis::RedisError) -> StoreError {
    if error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
    {
        StoreError::unavailable(error)
    } else {
        StoreError::Unexpected(Box::new(error))
    }
}
