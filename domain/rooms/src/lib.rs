//! Séance rooms domain: rooms, their messages, the room rules and the
//! ports that store rooms and carry a room's live events.
#![doc = include_str!("../README.md")]

mod broker;
mod ports;
mod room;
mod spirit;
mod values;

pub use broker::{
    Admission, BrokerError, ConnectionId, JoinRefusal, RoomBroker, RoomDelivery, RoomEvent, RoomEvents, SharedEvent,
};
pub use ports::{RoomError, RoomRepository};
pub use room::{NewRoom, Participant, Room, RoomMessage};
pub use spirit::{SPIRIT_NAME, SPIRIT_REPLY_MAX_WORDS, SpiritReply};
pub use values::{MaxUsers, MaxUsersError, RoomMessageText, RoomMessageTextError, RoomName, RoomNameError};

#[cfg(feature = "mock")]
pub use broker::MockRoomBroker;
#[cfg(feature = "mock")]
pub use ports::MockRoomRepository;
