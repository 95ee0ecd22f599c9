//! The `sessions` and `session_messages` rows and their conversion to and
//! from the domain types.

use diesel::prelude::*;
use parley_kernel::{RoomId, RoomMessageId, UserId};
use parley_rooms::{MaxUsers, Room, RoomMessage, RoomName};

use crate::rows::{CorruptRow, corrupt, from_micros, parse_uuid, to_micros};
use crate::schema::{session_messages, sessions};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct RoomRow {
    pub id: String,
    pub name: String,
    pub max_users: i16,
    pub host_id: String,
    pub created_at: i64,
    pub closed_at: Option<i64>,
}

impl RoomRow {
    pub(crate) fn from_room(room: &Room) -> Self {
        Self {
            id: room.id.to_string(),
            name: room.name.as_str().to_owned(),
            max_users: i16::from(room.max_users.get()),
            host_id: room.host.to_string(),
            created_at: to_micros(room.created_at),
            closed_at: room.closed_at.map(to_micros),
        }
    }

    pub(crate) fn into_room(self) -> Result<Room, CorruptRow> {
        Ok(Room {
            id: RoomId::from_uuid(parse_uuid(&self.id)?),
            name: RoomName::parse(&self.name).map_err(corrupt)?,
            max_users: MaxUsers::new(i64::from(self.max_users)).map_err(corrupt)?,
            host: UserId::from_uuid(parse_uuid(&self.host_id)?),
            created_at: from_micros(self.created_at)?,
            closed_at: self.closed_at.map(from_micros).transpose()?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = session_messages, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct RoomMessageRow {
    pub id: String,
    pub session_id: String,
    pub user_id: Option<String>,
    pub user_name: String,
    pub message: String,
    pub is_spirit: bool,
    pub created_at: i64,
}

impl RoomMessageRow {
    pub(crate) fn from_message(message: &RoomMessage) -> Self {
        Self {
            id: message.id.to_string(),
            session_id: message.room_id.to_string(),
            user_id: message.user_id.map(|id| id.to_string()),
            user_name: message.user_name.clone(),
            message: message.message.clone(),
            is_spirit: message.is_spirit,
            created_at: to_micros(message.timestamp),
        }
    }

    pub(crate) fn into_message(self) -> Result<RoomMessage, CorruptRow> {
        Ok(RoomMessage {
            id: RoomMessageId::from_uuid(parse_uuid(&self.id)?),
            room_id: RoomId::from_uuid(parse_uuid(&self.session_id)?),
            user_id: self.user_id.as_deref().map(parse_uuid).transpose()?.map(UserId::from_uuid),
            user_name: self.user_name,
            message: self.message,
            is_spirit: self.is_spirit,
            timestamp: from_micros(self.created_at)?,
        })
    }
}
