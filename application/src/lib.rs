//! Parley's use cases: services over the domain ports.
#![doc = include_str!("../README.md")]

mod assistant;
mod auth;
mod rate_limit;
mod sessions;
mod tasks;

pub use assistant::{
    AssistantError, AssistantEvent, AssistantService, MAX_ROUNDS, ReplyCut, ReplyLimits, WRITING_TOOLS, changed_tasks,
    tool_specs,
};
pub use auth::{AuthError, AuthService, CallerError, KNOWN_USER_TTL, Registration, Session};
pub use rate_limit::{RateDecision, RateLimiter};
pub use sessions::{
    CreateSessionError, JOIN_HISTORY, JoinError, JoinedRoom, LocalSpiritDesk, SPIRIT_PACE, SessionService, SessionView,
    Spawner, Spirit, SpiritDesk, Timer,
};
pub use tasks::TaskService;
