//! Séance sessions domain: rooms, their messages, the room rules and the
//! ports that store sessions and carry a room's live events.
#![doc = include_str!("../README.md")]

mod broker;
mod ports;
mod session;
mod spirit;
mod values;

pub use broker::{Admission, ConnectionId, JoinRefusal, RoomBroker, RoomDelivery, RoomEvent, RoomEvents, SharedEvent};
pub use ports::{SessionError, SessionRepository};
pub use session::{NewSession, Participant, Session, SessionMessage};
pub use spirit::{SPIRIT_NAME, SPIRIT_REPLY_MAX_WORDS, SpiritReply};
pub use values::{MaxUsers, MaxUsersError, RoomMessageText, RoomMessageTextError, SessionName, SessionNameError};

#[cfg(feature = "mock")]
pub use broker::MockRoomBroker;
#[cfg(feature = "mock")]
pub use ports::MockSessionRepository;
