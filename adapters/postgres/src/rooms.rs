//! `RoomRepository` on PostgreSQL.

use async_trait::async_trait;
use diesel::dsl;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use parley_kernel::{Cursor, Page, PageRequest, RoomId, StoreError, Timestamp, UserId};
use parley_rooms::{Room, RoomError, RoomMessage, RoomRepository};

use crate::error::{AccessError, CallFailure, PgError};
use crate::pool::{PgPool, read, write};
use crate::room_rows::{RoomMessageRow, RoomRow};
use crate::rows::keyset;
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

/// Why a room operation did not happen: a refusal the port names, or the store's failure.
enum Refusal {
    NotFound,
    Forbidden,
    Closed,
    Pg(PgError),
}

impl From<AccessError> for Refusal {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::NotFound => Self::NotFound,
            AccessError::Forbidden => Self::Forbidden,
            AccessError::Pg(error) => Self::Pg(error),
        }
    }
}

impl From<PgError> for Refusal {
    fn from(error: PgError) -> Self {
        Self::Pg(error)
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(error: diesel::result::Error) -> Self {
        Self::Pg(error.into())
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for Refusal {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        Self::Pg(error.into())
    }
}

impl CallFailure for Refusal {
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

impl From<Refusal> for RoomError {
    fn from(failure: Refusal) -> Self {
        match failure {
            Refusal::NotFound => Self::NotFound,
            Refusal::Forbidden => Self::Forbidden,
            Refusal::Closed => Self::Closed,
            Refusal::Pg(error) => Self::Store(error.into()),
        }
    }
}

/// The open rooms; the list reads them in [`newest_first`] order
/// (`sessions_active_newest`), its pages and its capped count alike.
pub(crate) fn open_rooms() -> dsl::Filter<sessions::table, dsl::IsNull<sessions::closed_at>> {
    sessions::table.filter(sessions::closed_at.is_null())
}

pub(crate) fn newest_first() -> (dsl::Desc<sessions::created_at>, dsl::Desc<sessions::id>) {
    (sessions::created_at.desc(), sessions::id.desc())
}

/// A room's messages; read in [`oldest_first`] order (`session_messages_oldest`).
pub(crate) fn messages_of(
    id: RoomId,
) -> dsl::Filter<session_messages::table, dsl::Eq<session_messages::session_id, uuid::Uuid>> {
    session_messages::table.filter(session_messages::session_id.eq(id.as_uuid()))
}

pub(crate) fn oldest_first() -> (dsl::Asc<session_messages::created_at>, dsl::Asc<session_messages::id>) {
    (session_messages::created_at.asc(), session_messages::id.asc())
}

/// One page of the open rooms, newest first, after `cursor`: the
/// statement `list_active` runs.
pub(crate) fn active_page(
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, AsyncPgConnection, RoomRow> + QueryFragment<Pg> + Send + 'static {
    let mut query = open_rooms().into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("sessions.created_at, sessions.id", true, cursor));
    }
    query.order(newest_first()).limit(limit).select(RoomRow::as_select())
}

/// One page of a room's messages, oldest first, after `cursor`: the
/// statement `messages` runs.
pub(crate) fn messages_page(
    id: RoomId,
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, AsyncPgConnection, RoomMessageRow> + QueryFragment<Pg> + Send + 'static {
    let mut query = messages_of(id).into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("session_messages.created_at, session_messages.id", false, cursor));
    }
    query.order(oldest_first()).limit(limit).select(RoomMessageRow::as_select())
}

/// The `closed_at` of the room, or `NotFound`.
async fn closed_at(conn: &mut AsyncPgConnection, id: RoomId) -> Result<Option<Timestamp>, Refusal> {
    let found: Option<Option<Timestamp>> =
        sessions::table.find(id.as_uuid()).select(sessions::closed_at).first(conn).await.optional()?;
    found.ok_or(Refusal::NotFound)
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
                Ok::<_, Refusal>(Room::try_from(row.ok_or(Refusal::NotFound)?)?)
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
                let total: i64 = capped_count!(open_rooms(), newest_first(), conn);
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
                AccessError::check(row.as_ref().map(|row| row.host_id), host.as_uuid())?;
                let mut row = row.ok_or(Refusal::NotFound)?;
                if row.closed_at.is_none() {
                    diesel::update(sessions::table.find(id.as_uuid()))
                        .set(sessions::closed_at.eq(now))
                        .execute(conn)
                        .await?;
                    row.closed_at = Some(now);
                }
                Ok::<_, Refusal>(Room::try_from(row)?)
            })
            .await
        })
        .await?;
        Ok(room)
    }

    #[tracing::instrument(skip_all, fields(room_id = %message.room_id, message_id = %message.id))]
    async fn add_message(&self, message: &RoomMessage) -> Result<(), RoomError> {
        let row = RoomMessageRow::from(message);
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
                return Err(Refusal::Closed);
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
                let total: i64 = capped_count!(messages_of(id), oldest_first(), conn);
                let rows: Vec<RoomMessageRow> = messages_page(id, page.cursor(), limit).load(conn).await?;
                Ok::<_, Refusal>((rows, total))
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
                let rows: Vec<RoomMessageRow> = session_messages::table
                    .filter(session_messages::session_id.eq(id.as_uuid()))
                    .order((session_messages::created_at.desc(), session_messages::id.desc()))
                    .limit(limit)
                    .select(RoomMessageRow::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, Refusal>(rows)
            }
        })
        .await?;
        Ok(rows.into_iter().rev().map(RoomMessage::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

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
