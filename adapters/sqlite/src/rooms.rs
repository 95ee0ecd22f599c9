//! `RoomRepository` on SQLite.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::query_dsl::LoadQuery;
use diesel::sqlite::Sqlite;
use parley_kernel::{Cursor, Page, PageRequest, RoomId, StoreError, Timestamp, UserId};
use parley_rooms::{Room, RoomError, RoomMessage, RoomRepository};

use crate::SqliteStore;
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

/// What a lookup inside a transaction decided, besides a query failure.
enum Outcome<T> {
    Done(T),
    NotFound,
    Forbidden,
    Closed,
}

impl<T> Outcome<T> {
    fn into_result(self) -> Result<T, RoomError> {
        match self {
            Self::Done(value) => Ok(value),
            Self::NotFound => Err(RoomError::NotFound),
            Self::Forbidden => Err(RoomError::Forbidden),
            Self::Closed => Err(RoomError::Closed),
        }
    }
}

fn find(conn: &mut SqliteConnection, id: &str) -> QueryResult<Option<RoomRow>> {
    sessions::table.find(id).select(RoomRow::as_select()).first(conn).optional()
}

fn exists(conn: &mut SqliteConnection, id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(sessions::table.find(id))).get_result(conn)
}

fn corrupt_store(error: CorruptRow) -> RoomError {
    RoomError::Store(error.into())
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
        self.store.run(move |conn| diesel::insert_into(sessions::table).values(&row).execute(conn).map(drop)).await
    }

    #[tracing::instrument(skip_all, fields(host = %host))]
    async fn count_open(&self, host: UserId) -> Result<u64, StoreError> {
        let host = host.to_string();
        let open: i64 = self
            .store
            .run(move |conn| {
                sessions::table
                    .filter(sessions::host_id.eq(host))
                    .filter(sessions::closed_at.is_null())
                    .count()
                    .get_result(conn)
            })
            .await?;
        Ok(u64::try_from(open).unwrap_or_default())
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn get(&self, id: RoomId) -> Result<Room, RoomError> {
        let key = id.to_string();
        let row = self.store.run(move |conn| find(conn, &key)).await?;
        row.ok_or(RoomError::NotFound)?.into_room().map_err(corrupt_store)
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
                    Ok((active_page(cursor, fetch).load::<RoomRow>(conn)?, total))
                })
            })
            .await?;
        let sessions = rows.into_iter().map(RoomRow::into_room).collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(sessions, page, total, |s| Cursor { at: s.created_at, id: s.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn close(&self, host: UserId, id: RoomId, now: Timestamp) -> Result<Room, RoomError> {
        let (key, host, now) = (id.to_string(), host.to_string(), to_micros(now));
        let closed = self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    let Some(mut row) = find(conn, &key)? else {
                        return Ok(Outcome::NotFound);
                    };
                    if row.host_id != host {
                        return Ok(Outcome::Forbidden);
                    }
                    if row.closed_at.is_none() {
                        diesel::update(sessions::table.find(&key)).set(sessions::closed_at.eq(now)).execute(conn)?;
                        row.closed_at = Some(now);
                    }
                    Ok(Outcome::Done(row))
                })
            })
            .await?;
        closed.into_result()?.into_room().map_err(corrupt_store)
    }

    #[tracing::instrument(skip_all, fields(room_id = %message.room_id, message_id = %message.id))]
    async fn add_message(&self, message: &RoomMessage) -> Result<(), RoomError> {
        let row = RoomMessageRow::from_message(message);
        let added = self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    let closed_at: Option<Option<i64>> =
                        sessions::table.find(&row.session_id).select(sessions::closed_at).first(conn).optional()?;
                    match closed_at {
                        None => return Ok(Outcome::NotFound),
                        Some(Some(_)) => return Ok(Outcome::Closed),
                        Some(None) => {}
                    }
                    diesel::insert_into(session_messages::table).values(&row).execute(conn)?;
                    Ok(Outcome::Done(()))
                })
            })
            .await?;
        added.into_result()
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn messages(&self, id: RoomId, page: &PageRequest) -> Result<Page<RoomMessage>, RoomError> {
        let (key, cursor) = (id.to_string(), page.cursor());
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let found = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    if !exists(conn, &key)? {
                        return Ok(Outcome::NotFound);
                    }
                    let total: i64 =
                        capped_count!(session_messages::table.filter(session_messages::session_id.eq(&key)), conn);
                    Ok(Outcome::Done((messages_page(&key, cursor, fetch).load::<RoomMessageRow>(conn)?, total)))
                })
            })
            .await?;
        let (rows, total) = found.into_result()?;
        let messages =
            rows.into_iter().map(RoomMessageRow::into_message).collect::<Result<Vec<_>, _>>().map_err(corrupt_store)?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(messages, page, total, |m| Cursor { at: m.timestamp, id: m.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(room_id = %id))]
    async fn recent(&self, id: RoomId, limit: usize) -> Result<Vec<RoomMessage>, RoomError> {
        let key = id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    if !exists(conn, &key)? {
                        return Ok(Outcome::NotFound);
                    }
                    let rows: Vec<RoomMessageRow> = session_messages::table
                        .filter(session_messages::session_id.eq(&key))
                        .order((session_messages::created_at.desc(), session_messages::id.desc()))
                        .limit(limit)
                        .select(RoomMessageRow::as_select())
                        .load(conn)?;
                    Ok(Outcome::Done(rows))
                })
            })
            .await?;
        found
            .into_result()?
            .into_iter()
            .rev()
            .map(RoomMessageRow::into_message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt_store)
    }
}
