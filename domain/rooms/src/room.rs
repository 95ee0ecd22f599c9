//! The room aggregate, the people in a room and what they say.

use parley_kernel::{RoomId, RoomMessageId, Timestamp, UserId};

use crate::{MaxUsers, RoomMessageText, RoomName, SPIRIT_NAME};

/// A séance room. It is active until its host closes it; closing is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: RoomId,
    pub name: RoomName,
    pub max_users: MaxUsers,
    pub host: UserId,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// What creating a room needs; the host is always the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRoom {
    pub name: RoomName,
    pub max_users: MaxUsers,
}

impl Room {
    /// A room created now by `host`.
    #[must_use]
    pub fn create(host: UserId, new: NewRoom, now: Timestamp) -> Self {
        Self { id: RoomId::new(), name: new.name, max_users: new.max_users, host, created_at: now, closed_at: None }
    }

    /// Whether the room still admits people and messages.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.closed_at.is_none()
    }
}

/// A user present in a room, under the name they joined with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub user_id: UserId,
    pub name: String,
}

/// One message said in a room, by a person or by the spirit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomMessage {
    pub id: RoomMessageId,
    pub room_id: RoomId,
    /// `None` for the spirit.
    pub user_id: Option<UserId>,
    pub user_name: String,
    pub message: String,
    pub is_spirit: bool,
    pub timestamp: Timestamp,
}

impl RoomMessage {
    /// What `author` says in `room` at `now`.
    #[must_use]
    pub fn human(room: RoomId, author: &Participant, text: RoomMessageText, now: Timestamp) -> Self {
        Self {
            id: RoomMessageId::new(),
            room_id: room,
            user_id: Some(author.user_id),
            user_name: author.name.clone(),
            message: text.into_string(),
            is_spirit: false,
            timestamp: now,
        }
    }

    /// What the spirit says in `room` at `now`.
    #[must_use]
    pub fn spirit(room: RoomId, text: String, now: Timestamp) -> Self {
        Self {
            id: RoomMessageId::new(),
            room_id: room,
            user_id: None,
            user_name: SPIRIT_NAME.to_owned(),
            message: text,
            is_spirit: true,
            timestamp: now,
        }
    }
}
