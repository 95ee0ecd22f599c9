//! `RoomRepository` on SQLite.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::query_dsl::LoadQuery;
use diesel::sqlite::Sqlite;
use parley_kernel::{Cursor, Page, PageRequest, RoomId, StoreError, Timestamp, UserId};
use parley_rooms::{Room, RoomError, RoomMessage, RoomRepository};

use crate::SqliteStore;
use crate::error::{AccessError, SqliteError};
use crate::room_rows::{RoomMessageRow, RoomRow};
use crate::rows::{CorruptRow, keyset, to_micros};
use crate::schema::{session_messages, sessions};

/// Séance rooms and their messages.
pub struct SqliteRoomRepository {
    store: SqliteStore,
}

impl SqliteRoomRepository {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

/// Why a room operation did not happen: a refusal the port names, or the store's failure.
#[derive(Debug)]
enum Refusal {
    NotFound,
    Forbidden,
    Closed,
    Sqlite(SqliteError),
}

impl From<SqliteError> for Refusal {
    fn from(error: SqliteError) -> Self {
        Self::Sqlite(error)
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(error: diesel::result::Error) -> Self {
        Self::Sqlite(error.into())
    }
}

impl From<CorruptRow> for Refusal {
    fn from(error: CorruptRow) -> Self {
        Self::Sqlite(error.into())
    }
}

impl From<AccessError> for Refusal {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::NotFound => Self::NotFound,
            AccessError::Forbidden => Self::Forbidden,
            AccessError::Sqlite(error) => Self::Sqlite(error),
        }
    }
}

impl From<Refusal> for RoomError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound => Self::NotFound,
            Refusal::Forbidden => Self::Forbidden,
            Refusal::Closed => Self::Closed,
            Refusal::Sqlite(error) => Self::Store(error.into()),
        }
    }
}

fn find(conn: &mut SqliteConnection, id: &str) -> Result<RoomRow, Refusal> {
    let row = sessions::table.find(id).select(RoomRow::as_select()).first(conn).optional()?;
    row.ok_or(Refusal::NotFound)
}

/// The `closed_at` of the room, or `NotFound`.
fn closed_at(conn: &mut SqliteConnection, id: &str) -> Result<Option<i64>, Refusal> {
    let found: Option<Option<i64>> = sessions::table.find(id).select(sessions::closed_at).first(conn).optional()?;
    found.ok_or(Refusal::NotFound)
}

/// One page of the open rooms, newest first, after `cursor`.
pub(crate) fn active_page(
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, SqliteConnection, RoomRow> + QueryFragment<Sqlite> + Send + 'static {
    let mut query = sessions::table
        .filter(sessions::closed_at.is_null())
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .limit(limit)
        .select(RoomRow::as_select())
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("sessions.created_at, sessions.id", true, cursor));
    }
    query
}

/// One page of a room's messages, oldest first, after `cursor`.
pub(crate) fn messages_page(
    id: &str,
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, SqliteConnection, RoomMessageRow> + QueryFragment<Sqlite> + Send + 'static {
    let mut query = session_messages::table
        .filter(session_messages::session_id.eq(id.to_owned()))
        .order((session_messages::created_at.asc(), session_messages::id.asc()))
        .limit(limit)
        .select(RoomMessageRow::as_select())
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("session_messages.created_at, session_messages.id", false, cursor));
    }
    query
}

#[async_trait]
impl RoomRepository for SqliteRoomRepository {
    #[tracing::instrument(skip_all, fields(room_id = %room.id))]
    async fn create(&self, room: &Room) -> Result<(), StoreError> {
        let row = RoomRow::from_room(room);
        self.store
            .run(move |conn| {
                diesel::insert_into(sessions::table).values(&row).execute(conn)?;
                Ok::<_, SqliteError>(())
            })
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(host = %host))]
    async fn count_open(&self, host: UserId) -> Result<u64, StoreError> {
        let host = host.to_string();
        let open: i64 = self
            .store
            .run(move |conn| {
                let open = sessions::table
                    .filter(sessions::host_id.eq(host))
                    .filter(sessions::closed_at.is_null())
                    .count()
                    .get_result(conn)?;
                Ok::<_, SqliteError>(open)
            })
            .await?;
        Ok(u64::try_from(open).unwrap_or_default())
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn get(&self, id: RoomId) -> Result<Room, RoomError> {
        let key = id.to_string();
        let room = self.store.run(move |conn| Ok::<_, Refusal>(find(conn, &key)?.into_room()?)).await?;
        Ok(room)
    }

    #[tracing::instrument(skip_all)]
    async fn list_active(&self, page: &PageRequest) -> Result<Page<Room>, StoreError> {
        let cursor = page.cursor();
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    let total: i64 = capped_count!(sessions::table.filter(sessions::closed_at.is_null()), conn);
                    let rows: Vec<RoomRow> = active_page(cursor, fetch).load(conn)?;
                    Ok::<_, SqliteError>((rows, total))
                })
            })
            .await?;
        let rooms = rows.into_iter().map(RoomRow::into_room).collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(rooms, page, total, |room| Cursor { at: room.created_at, id: room.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn close(&self, host: UserId, id: RoomId, now: Timestamp) -> Result<Room, RoomError> {
        let (key, host, now) = (id.to_string(), host.to_string(), to_micros(now));
        let room = self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    let mut row = find(conn, &key)?;
                    AccessError::check(Some(&row.host_id), &host)?;
                    if row.closed_at.is_none() {
                        diesel::update(sessions::table.find(&key)).set(sessions::closed_at.eq(now)).execute(conn)?;
                        row.closed_at = Some(now);
                    }
                    Ok::<_, Refusal>(row.into_room()?)
                })
            })
            .await?;
        Ok(room)
    }

    #[tracing::instrument(skip_all, fields(room_id = %message.room_id, message_id = %message.id))]
    async fn add_message(&self, message: &RoomMessage) -> Result<(), RoomError> {
        let row = RoomMessageRow::from_message(message);
        self.store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    if closed_at(conn, &row.session_id)?.is_some() {
                        return Err(Refusal::Closed);
                    }
                    diesel::insert_into(session_messages::table).values(&row).execute(conn)?;
                    Ok(())
                })
            })
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn messages(&self, id: RoomId, page: &PageRequest) -> Result<Page<RoomMessage>, RoomError> {
        let (key, cursor) = (id.to_string(), page.cursor());
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    closed_at(conn, &key)?;
                    let total: i64 =
                        capped_count!(session_messages::table.filter(session_messages::session_id.eq(&key)), conn);
                    let rows: Vec<RoomMessageRow> = messages_page(&key, cursor, fetch).load(conn)?;
                    Ok::<_, Refusal>((rows, total))
                })
            })
            .await?;
        let messages = rows.into_iter().map(RoomMessageRow::into_message).collect::<Result<Vec<_>, _>>();
        let messages = messages.map_err(StoreError::from)?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(messages, page, total, |m| Cursor { at: m.timestamp, id: m.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn recent(&self, id: RoomId, limit: usize) -> Result<Vec<RoomMessage>, RoomError> {
        let key = id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    closed_at(conn, &key)?;
                    let rows: Vec<RoomMessageRow> = session_messages::table
                        .filter(session_messages::session_id.eq(&key))
                        .order((session_messages::created_at.desc(), session_messages::id.desc()))
                        .limit(limit)
                        .select(RoomMessageRow::as_select())
                        .load(conn)?;
                    Ok::<_, Refusal>(rows)
                })
            })
            .await?;
        let messages = rows.into_iter().rev().map(RoomMessageRow::into_message).collect::<Result<Vec<_>, _>>();
        Ok(messages.map_err(StoreError::from)?)
    }
}
