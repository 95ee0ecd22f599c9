//! The `sessions` and `session_messages` rows and their conversion to and
//! from the domain types.

use diesel::prelude::*;
use parley_kernel::{SessionId, SessionMessageId, UserId};
use parley_sessions::{MaxUsers, Session, SessionMessage, SessionName};

use crate::rows::{CorruptRow, corrupt, from_micros, parse_uuid, to_micros};
use crate::schema::{session_messages, sessions};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SessionRow {
    pub id: String,
    pub name: String,
    pub max_users: i16,
    pub host_id: String,
    pub created_at: i64,
    pub closed_at: Option<i64>,
}

impl SessionRow {
    pub(crate) fn from_session(session: &Session) -> Self {
        Self {
            id: session.id.to_string(),
            name: session.name.as_str().to_owned(),
            max_users: i16::from(session.max_users.get()),
            host_id: session.host.to_string(),
            created_at: to_micros(session.created_at),
            closed_at: session.closed_at.map(to_micros),
        }
    }

    pub(crate) fn into_session(self) -> Result<Session, CorruptRow> {
        Ok(Session {
            id: SessionId::from_uuid(parse_uuid(&self.id)?),
            name: SessionName::parse(&self.name).map_err(corrupt)?,
            max_users: MaxUsers::new(i64::from(self.max_users)).map_err(corrupt)?,
            host: UserId::from_uuid(parse_uuid(&self.host_id)?),
            created_at: from_micros(self.created_at)?,
            closed_at: self.closed_at.map(from_micros).transpose()?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = session_messages, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct SessionMessageRow {
    pub id: String,
    pub session_id: String,
    pub user_id: Option<String>,
    pub user_name: String,
    pub message: String,
    pub is_spirit: bool,
    pub created_at: i64,
}

impl SessionMessageRow {
    pub(crate) fn from_message(message: &SessionMessage) -> Self {
        Self {
            id: message.id.to_string(),
            session_id: message.session_id.to_string(),
            user_id: message.user_id.map(|id| id.to_string()),
            user_name: message.user_name.clone(),
            message: message.message.clone(),
            is_spirit: message.is_spirit,
            created_at: to_micros(message.timestamp),
        }
    }

    pub(crate) fn into_message(self) -> Result<SessionMessage, CorruptRow> {
        Ok(SessionMessage {
            id: SessionMessageId::from_uuid(parse_uuid(&self.id)?),
            session_id: SessionId::from_uuid(parse_uuid(&self.session_id)?),
            user_id: self.user_id.as_deref().map(parse_uuid).transpose()?.map(UserId::from_uuid),
            user_name: self.user_name,
            message: self.message,
            is_spirit: self.is_spirit,
            timestamp: from_micros(self.created_at)?,
        })
    }
}
