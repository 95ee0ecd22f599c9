//! The one place that builds the adapters and services from the settings:
//! the store (`store.rs`'s `Stores`, picked from `DATABASE_URL`), the model provider,
//! the token service and hasher, and the state instances may share, in this
//! process or in Redis when `REDIS_URL` is set (docs/scaling.md). `lib.rs`
//! builds the HTTP front on what this returns.

use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::Context as _;
use parley_application::{
    AssistantService, AuthService, LocalSpiritDesk, RateLimiter, RoomService, SPIRIT_PACE, SpiritDesk, TaskService,
};
use parley_auth::{Argon2PasswordHasher, HasherConfig, PasetoTokenService};
use parley_conversations::LanguageModel;
use parley_kernel::SystemClock;
use parley_llm::{OfflineAssistant, OfflineSpirit, OpenAiConfig, OpenAiLanguageModel};
use parley_redis::{Redis, RedisRateLimiter, RedisRoomBroker, RedisSpiritDesk, RoomSettings};
use parley_rooms::RoomBroker;
use secrecy::ExposeSecret as _;

use crate::Settings;
use crate::api::health::DatabaseProbe;
use crate::metrics;
use crate::rooms::TokioSpawner;
use crate::store::Stores;

/// The chat budget, the room broker and the spirit's desk, and Redis if they live there.
struct Shared {
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub broker: Arc<dyn RoomBroker>,
    pub spirit_desk: Arc<dyn SpiritDesk>,
    pub redis: Option<Redis>,
}

/// In-process adapters without `REDIS_URL`; Redis ones with it, the chat
/// budget falling back to the in-process limiter while Redis is unreachable.
/// With Redis it must run on the tokio runtime: the broker subscribes at once.
fn shared(settings: &Settings) -> anyhow::Result<Shared> {
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

/// The services every API area is built from.
pub(crate) struct Services {
    pub auth: Arc<AuthService>,
    pub tasks: Arc<TaskService>,
    pub assistant: Arc<AssistantService>,
    pub rate_limiter: Arc<dyn RateLimiter>,
    pub rooms: Arc<RoomService>,
    /// Shared by the documented `/health` and the lean route that serves it.
    pub probe: Arc<DatabaseProbe>,
    /// Where instances share state, when `REDIS_URL` is set.
    pub redis: Option<parley_redis::Redis>,
}

/// The configured provider for `role`, or the offline stand-in.
fn language_model(settings: &Settings, offline: Arc<dyn LanguageModel>) -> anyhow::Result<Arc<dyn LanguageModel>> {
    let Some(llm) = &settings.llm else { return Ok(Arc::new(metrics::MeteredModel::new(offline, "offline"))) };
    let config = OpenAiConfig {
        base_url: llm.base_url.clone(),
        api_key: llm.api_key.clone(),
        model: llm.model.clone(),
        timeout: llm.timeout,
        max_tokens: settings.assistant_limits.max_tokens,
    };
    let model = Arc::new(OpenAiLanguageModel::new(config).context("LLM_BASE_URL")?);
    Ok(Arc::new(metrics::MeteredModel::new(model, "openai_compatible")))
}

pub(crate) fn services(settings: &Settings, store: Stores) -> anyhow::Result<Services> {
    let key = match &settings.token_secret {
        Some(key) => key.expose_secret().0,
        None => {
            tracing::warn!(
                "TOKEN_SECRET is not set: generated a random key, so every restart logs everyone out; \
                 make a key with `parley token-secret` and set TOKEN_SECRET to it"
            );
            let mut key = [0_u8; 32];
            key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key
        }
    };
    let tokens =
        PasetoTokenService::new(&key, settings.access_token_ttl).context("TOKEN_SECRET is not a usable key")?;
    let clock = Arc::new(SystemClock);
    let auth = AuthService::new(
        store.users.clone(),
        Arc::new(metrics::MeteredHasher::new(Arc::new(Argon2PasswordHasher::new(HasherConfig::default())))),
        Arc::new(tokens),
        clock.clone(),
    );
    let tasks = Arc::new(TaskService::new(store.tasks.clone(), clock.clone()));
    let model = language_model(settings, Arc::new(OfflineAssistant::new()))?;
    let limits = settings.assistant_limits.reply_limits();
    let assistant =
        AssistantService::new(store.conversations.clone(), tasks.clone(), model, clock, limits, Arc::new(TokioSpawner));
    let Shared { rate_limiter, broker, spirit_desk, redis } = shared(settings)?;
    let spirit = language_model(settings, Arc::new(OfflineSpirit::new()))?;
    let room_limits = RoomLimits {
        max_open_per_host: settings.max_open_sessions_per_user,
        spirit_max_concurrent: settings.spirit_max_concurrent,
        spirit_budget: rate_limiter.clone(),
    };
    Ok(Services {
        rooms: room_service(&store, spirit, broker, spirit_desk, room_limits),
        probe: Arc::new(DatabaseProbe::new(store.users.clone())),
        auth: Arc::new(auth),
        tasks,
        assistant: Arc::new(assistant),
        rate_limiter,
        redis,
    })
}

/// Limits on the séance use cases (from the settings).
struct RoomLimits {
    /// Open sessions per host.
    pub max_open_per_host: u32,
    /// Rooms the spirit answers at once in this process.
    pub spirit_max_concurrent: u32,
    /// The per-user budget every message the spirit answers spends.
    pub spirit_budget: Arc<dyn parley_application::RateLimiter>,
}

/// The séance use cases on `store`, with `broker` carrying the rooms and `model` as the spirit.
fn room_service(
    store: &Stores,
    model: Arc<dyn parley_conversations::LanguageModel>,
    broker: Arc<dyn parley_rooms::RoomBroker>,
    spirit_desk: Arc<dyn parley_application::SpiritDesk>,
    limits: RoomLimits,
) -> Arc<RoomService> {
    let clock = Arc::new(parley_kernel::SystemClock);
    let spirit = parley_application::Spirit::new(
        model,
        parley_application::SPIRIT_PERSONA,
        store.rooms.clone(),
        Arc::clone(&broker),
        clock.clone(),
    )
    .desk(spirit_desk)
    .paced(Arc::new(TokioSpawner), SPIRIT_PACE)
    .at_most(usize::try_from(limits.spirit_max_concurrent).unwrap_or(usize::MAX));
    let service = RoomService::new(
        store.rooms.clone(),
        broker,
        store.users.clone(),
        clock,
        Arc::new(spirit),
        Arc::new(TokioSpawner),
    )
    .max_open_per_host(limits.max_open_per_host)
    .spirit_budget(limits.spirit_budget);
    Arc::new(service)
}
