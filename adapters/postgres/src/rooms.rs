//! `RoomRepository` on PostgreSQL.

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use parley_kernel::{Cursor, Page, PageRequest, RoomId, RoomMessageId, StoreError, Timestamp, UserId};
use parley_rooms::{MaxUsers, Room, RoomError, RoomMessage, RoomName, RoomRepository};
use uuid::Uuid;

use crate::error::{CallFailure, PgError};
use crate::pool::{PgPool, read, write};
use crate::schema::{session_messages, sessions};

/// Stores séance sessions and their messages in `sessions` and `session_messages`.
#[derive(Clone)]
pub struct PgRoomRepository {
    pool: PgPool,
}

impl PgRoomRepository {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions, check_for_backend(Pg), treat_none_as_default_value = false)]
pub(crate) struct RoomRow {
    pub(crate) id: Uuid,
    name: String,
    max_users: i16,
    host_id: Uuid,
    pub(crate) created_at: Timestamp,
    closed_at: Option<Timestamp>,
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
pub(crate) struct MessageRow {
    pub(crate) id: Uuid,
    session_id: Uuid,
    user_id: Option<Uuid>,
    user_name: String,
    message: String,
    is_spirit: bool,
    pub(crate) created_at: Timestamp,
}

impl From<&RoomMessage> for MessageRow {
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

impl From<MessageRow> for RoomMessage {
    fn from(row: MessageRow) -> Self {
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

/// A failure inside a room call, before it becomes a `RoomError`.
enum Failure {
    NotFound,
    Forbidden,
    Closed,
    Pg(PgError),
}

impl From<PgError> for Failure {
    fn from(error: PgError) -> Self {
        Self::Pg(error)
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(error: diesel::result::Error) -> Self {
        Self::Pg(error.into())
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Failure {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Pg(error.into())
    }
}

impl CallFailure for Failure {
    fn pg(&self) -> Option<&PgError> {
        match self {
            Self::Pg(error) => Some(error),
            Self::NotFound | Self::Forbidden | Self::Closed => None,
        }
    }

    fn pg_mut(&mut self) -> Option<&mut PgError> {
        match self {
            Self::Pg(error) => Some(error),
            Self::NotFound | Self::Forbidden | Self::Closed => None,
        }
    }
}

impl From<Failure> for RoomError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::NotFound => Self::NotFound,
            Failure::Forbidden => Self::Forbidden,
            Failure::Closed => Self::Closed,
            Failure::Pg(error) => Self::Store(error.into()),
        }
    }
}

/// Room rows strictly after `cursor` in (created_at desc, id desc) order.
fn older_than(cursor: Cursor) -> Box<dyn BoxableExpression<sessions::table, Pg, SqlType = Bool>> {
    Box::new(
        diesel::dsl::sql::<Bool>("(sessions.created_at, sessions.id) < (")
            .bind::<Timestamptz, _>(cursor.at)
            .sql(", ")
            .bind::<SqlUuid, _>(cursor.id)
            .sql(")"),
    )
}

/// Message rows strictly after `cursor` in (created_at, id) order.
fn newer_than(cursor: Cursor) -> Box<dyn BoxableExpression<session_messages::table, Pg, SqlType = Bool>> {
    Box::new(
        diesel::dsl::sql::<Bool>("(session_messages.created_at, session_messages.id) > (")
            .bind::<Timestamptz, _>(cursor.at)
            .sql(", ")
            .bind::<SqlUuid, _>(cursor.id)
            .sql(")"),
    )
}

/// One page of the open rooms, newest first, after `cursor`: the
/// statement `list_active` runs.
pub(crate) fn active_page(
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, AsyncPgConnection, RoomRow> + QueryFragment<Pg> + Send + 'static {
    let mut query = sessions::table.filter(sessions::closed_at.is_null()).into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(older_than(cursor));
    }
    query.order((sessions::created_at.desc(), sessions::id.desc())).limit(limit).select(RoomRow::as_select())
}

/// One page of a room's messages, oldest first, after `cursor`: the
/// statement `messages` runs.
pub(crate) fn messages_page(
    id: RoomId,
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, AsyncPgConnection, MessageRow> + QueryFragment<Pg> + Send + 'static {
    let mut query = session_messages::table.filter(session_messages::session_id.eq(id.as_uuid())).into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(newer_than(cursor));
    }
    query
        .order((session_messages::created_at.asc(), session_messages::id.asc()))
        .limit(limit)
        .select(MessageRow::as_select())
}

/// The `closed_at` of the room, or `NotFound`.
async fn closed_at(conn: &mut AsyncPgConnection, id: RoomId) -> Result<Option<Timestamp>, Failure> {
    let found: Option<Option<Timestamp>> =
        sessions::table.find(id.as_uuid()).select(sessions::closed_at).first(conn).await.optional()?;
    found.ok_or(Failure::NotFound)
}

fn limit_of(page: &PageRequest) -> Result<i64, StoreError> {
    i64::try_from(page.limit() + 1).map_err(StoreError::unexpected)
}

#[async_trait]
impl RoomRepository for PgRoomRepository {
    #[tracing::instrument(skip_all, fields(room_id = %room.id))]
    async fn create(&self, room: &Room) -> Result<(), StoreError> {
        let row = RoomRow::from(room);
        write(&self.pool, async |conn| {
            diesel::insert_into(sessions::table).values(&row).execute(conn).await?;
            Ok::<_, PgError>(())
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(host = %host))]
    async fn count_open(&self, host: UserId) -> Result<u64, StoreError> {
        let open = read(&self.pool, move || {
            async move |conn| {
                let open: i64 = sessions::table
                    .filter(sessions::host_id.eq(host.as_uuid()))
                    .filter(sessions::closed_at.is_null())
                    .count()
                    .get_result(conn)
                    .await?;
                Ok::<_, PgError>(open)
            }
        })
        .await?;
        u64::try_from(open).map_err(StoreError::unexpected)
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn get(&self, id: RoomId) -> Result<Room, RoomError> {
        let room = read(&self.pool, move || {
            async move |conn| {
                let row: Option<RoomRow> =
                    sessions::table.find(id.as_uuid()).select(RoomRow::as_select()).first(conn).await.optional()?;
                Ok::<_, Failure>(Room::try_from(row.ok_or(Failure::NotFound)?)?)
            }
        })
        .await?;
        Ok(room)
    }

    #[tracing::instrument(skip_all)]
    async fn list_active(&self, page: &PageRequest) -> Result<Page<Room>, StoreError> {
        let limit = limit_of(page)?;
        let (rows, total) = read(&self.pool, move || {
            async move |conn| {
                let total: i64 = capped_count!(sessions::table.filter(sessions::closed_at.is_null()), conn);
                let rows: Vec<RoomRow> = active_page(page.cursor(), limit).load(conn).await?;
                Ok::<_, PgError>((rows, total))
            }
        })
        .await?;
        let sessions = rows.into_iter().map(Room::try_from).collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(total).map_err(StoreError::unexpected)?;
        Ok(Page::from_overfetch(sessions, page, total, |s| Cursor { at: s.created_at, id: s.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn close(&self, host: UserId, id: RoomId, now: Timestamp) -> Result<Room, RoomError> {
        let room = write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                let row: Option<RoomRow> = sessions::table
                    .find(id.as_uuid())
                    .select(RoomRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                let mut row = row.ok_or(Failure::NotFound)?;
                if row.host_id != host.as_uuid() {
                    return Err(Failure::Forbidden);
                }
                if row.closed_at.is_none() {
                    diesel::update(sessions::table.find(id.as_uuid()))
                        .set(sessions::closed_at.eq(now))
                        .execute(conn)
                        .await?;
                    row.closed_at = Some(now);
                }
                Ok(Room::try_from(row)?)
            })
            .await
        })
        .await?;
        Ok(room)
    }

    #[tracing::instrument(skip_all, fields(room_id = %message.room_id, message_id = %message.id))]
    async fn add_message(&self, message: &RoomMessage) -> Result<(), RoomError> {
        let row = MessageRow::from(message);
        let room = message.room_id;
        write(&self.pool, async |conn| {
            // One statement, one round trip: the row is inserted only if the
            // room is open. FOR SHARE waits for a concurrent close (FOR
            // UPDATE) to commit, and then sees the room closed.
            let open_room = sessions::table
                .filter(sessions::id.eq(row.session_id))
                .filter(sessions::closed_at.is_null())
                .select((
                    row.id.into_sql::<SqlUuid>(),
                    sessions::id,
                    row.user_id.into_sql::<Nullable<SqlUuid>>(),
                    row.user_name.as_str().into_sql::<Text>(),
                    row.message.as_str().into_sql::<Text>(),
                    row.is_spirit.into_sql::<Bool>(),
                    row.created_at.into_sql::<Timestamptz>(),
                ))
                .for_share();
            let inserted = diesel::insert_into(session_messages::table)
                .values(open_room)
                .into_columns((
                    session_messages::id,
                    session_messages::session_id,
                    session_messages::user_id,
                    session_messages::user_name,
                    session_messages::message,
                    session_messages::is_spirit,
                    session_messages::created_at,
                ))
                .execute(conn)
                .await?;
            if inserted == 0 {
                // Unknown or closed: say which.
                closed_at(conn, room).await?;
                return Err(Failure::Closed);
            }
            Ok(())
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn messages(&self, id: RoomId, page: &PageRequest) -> Result<Page<RoomMessage>, RoomError> {
        let limit = limit_of(page)?;
        let (rows, total) = read(&self.pool, move || {
            async move |conn| {
                closed_at(conn, id).await?;
                let total: i64 =
                    capped_count!(session_messages::table.filter(session_messages::session_id.eq(id.as_uuid())), conn);
                let rows: Vec<MessageRow> = messages_page(id, page.cursor(), limit).load(conn).await?;
                Ok::<_, Failure>((rows, total))
            }
        })
        .await?;
        let messages: Vec<RoomMessage> = rows.into_iter().map(RoomMessage::from).collect();
        let total = u64::try_from(total).map_err(StoreError::unexpected)?;
        Ok(Page::from_overfetch(messages, page, total, |m| Cursor { at: m.timestamp, id: m.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn recent(&self, id: RoomId, limit: usize) -> Result<Vec<RoomMessage>, RoomError> {
        let limit = i64::try_from(limit).map_err(StoreError::unexpected)?;
        let rows = read(&self.pool, move || {
            async move |conn| {
                closed_at(conn, id).await?;
                let rows: Vec<MessageRow> = session_messages::table
                    .filter(session_messages::session_id.eq(id.as_uuid()))
                    .order((session_messages::created_at.desc(), session_messages::id.desc()))
                    .limit(limit)
                    .select(MessageRow::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, Failure>(rows)
            }
        })
        .await?;
        Ok(rows.into_iter().rev().map(RoomMessage::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserting_a_room_reuses_its_prepared_statement() {
        let now = Timestamp::UNIX_EPOCH;
        let room = RoomRow {
            id: Uuid::nil(),
            name: "s".to_owned(),
            max_users: 2,
            host_id: Uuid::nil(),
            created_at: now,
            closed_at: None,
        };
        assert!(crate::statement_is_cached(&diesel::insert_into(sessions::table).values(&room)));
    }
}
