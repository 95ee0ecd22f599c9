//! The session aggregate, the people in a room and what they say.

use parley_kernel::{SessionId, SessionMessageId, Timestamp, UserId};

use crate::{MaxUsers, RoomMessageText, SPIRIT_NAME, SessionName};

/// A séance room. It is active until its host closes it; closing is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub name: SessionName,
    pub max_users: MaxUsers,
    pub host: UserId,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// What creating a session needs; the host is always the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub name: SessionName,
    pub max_users: MaxUsers,
}

impl Session {
    /// A session created now by `host`.
    #[must_use]
    pub fn create(host: UserId, new: NewSession, now: Timestamp) -> Self {
        Self { id: SessionId::new(), name: new.name, max_users: new.max_users, host, created_at: now, closed_at: None }
    }

    /// Whether the session still admits people and messages.
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
pub struct SessionMessage {
    pub id: SessionMessageId,
    pub session_id: SessionId,
    /// `None` for the spirit.
    pub user_id: Option<UserId>,
    pub user_name: String,
    pub message: String,
    pub is_spirit: bool,
    pub timestamp: Timestamp,
}

impl SessionMessage {
    /// What `author` says in `session` at `now`.
    #[must_use]
    pub fn human(session: SessionId, author: &Participant, text: RoomMessageText, now: Timestamp) -> Self {
        Self {
            id: SessionMessageId::new(),
            session_id: session,
            user_id: Some(author.user_id),
            user_name: author.name.clone(),
            message: text.into_string(),
            is_spirit: false,
            timestamp: now,
        }
    }

    /// What the spirit says in `session` at `now`.
    #[must_use]
    pub fn spirit(session: SessionId, text: String, now: Timestamp) -> Self {
        Self {
            id: SessionMessageId::new(),
            session_id: session,
            user_id: None,
            user_name: SPIRIT_NAME.to_owned(),
            message: text,
            is_spirit: true,
            timestamp: now,
        }
    }
}
