//! Parley's use cases: services over the domain ports.
#![doc = include_str!("../README.md")]

mod assistant;
mod auth;
mod rate_limit;
mod rooms;
mod tasks;

pub use assistant::vocabulary as tools;
pub use assistant::{
    AssistantError, AssistantEvent, AssistantService, MAX_ROUNDS, ReplyCut, ReplyLimits, changed_tasks, tool_specs,
};
pub use auth::{AuthError, AuthService, CallerError, KNOWN_USER_TTL, Registration, SignedIn};
/// The longest reply the séance spirit gives, in words (the domain's rule).
pub use parley_rooms::SPIRIT_REPLY_MAX_WORDS;
pub use rate_limit::{RateDecision, RateLimiter};
pub use rooms::{
    CreateRoomError, JOIN_HISTORY, JoinError, JoinedRoom, LocalSpiritDesk, RoomService, RoomView, SPIRIT_PACE,
    SPIRIT_PERSONA, Spawner, Spirit, SpiritDesk, Timer,
};
pub use tasks::TaskService;
