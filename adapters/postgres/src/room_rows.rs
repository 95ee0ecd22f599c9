//! The `sessions` and `session_messages` rows and their conversion to and
//! from the domain types.

use diesel::pg::Pg;
use diesel::prelude::*;
use parley_kernel::{RoomId, RoomMessageId, Timestamp, UserId};
use parley_rooms::{MaxUsers, Room, RoomMessage, RoomName};
use uuid::Uuid;

use crate::error::PgError;
use crate::schema::{session_messages, sessions};

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(Pg), treat_none_as_default_value = false)]
pub(crate) struct RoomRow {
    pub(crate) id: Uuid,
    pub(crate) name: String,
    pub(crate) max_users: i16,
    pub(crate) host_id: Uuid,
    pub(crate) created_at: Timestamp,
    pub(crate) closed_at: Option<Timestamp>,
}

impl From<&Room> for RoomRow {
    fn from(room: &Room) -> Self {
        Self {
            id: room.id.as_uuid(),
            name: room.name.as_str().to_owned(),
            max_users: i16::from(room.max_users.get()),
            host_id: room.host.as_uuid(),
            created_at: room.created_at,
            closed_at: room.closed_at,
        }
    }
}

impl TryFrom<RoomRow> for Room {
    type Error = PgError;

    fn try_from(row: RoomRow) -> Result<Self, PgError> {
        Ok(Self {
            id: RoomId::from_uuid(row.id),
            name: RoomName::parse(&row.name).map_err(PgError::corrupt)?,
            max_users: MaxUsers::new(i64::from(row.max_users)).map_err(PgError::corrupt)?,
            host: UserId::from_uuid(row.host_id),
            created_at: row.created_at,
            closed_at: row.closed_at,
        })
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = session_messages, check_for_backend(Pg))]
pub(crate) struct RoomMessageRow {
    pub(crate) id: Uuid,
    pub(crate) session_id: Uuid,
    pub(crate) user_id: Option<Uuid>,
    pub(crate) user_name: String,
    pub(crate) message: String,
    pub(crate) is_spirit: bool,
    pub(crate) created_at: Timestamp,
}

impl From<&RoomMessage> for RoomMessageRow {
    fn from(message: &RoomMessage) -> Self {
        Self {
            id: message.id.as_uuid(),
            session_id: message.room_id.as_uuid(),
            user_id: message.user_id.map(|id| id.as_uuid()),
            user_name: message.user_name.clone(),
            message: message.message.clone(),
            is_spirit: message.is_spirit,
            created_at: message.timestamp,
        }
    }
}

impl From<RoomMessageRow> for RoomMessage {
    fn from(row: RoomMessageRow) -> Self {
        Self {
            id: RoomMessageId::from_uuid(row.id),
            room_id: RoomId::from_uuid(row.session_id),
            user_id: row.user_id.map(UserId::from_uuid),
            user_name: row.user_name,
            message: row.message,
            is_spirit: row.is_spirit,
            timestamp: row.created_at,
        }
    }
}
