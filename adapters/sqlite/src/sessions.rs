//! `SessionRepository` on SQLite.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel::query_builder::QueryFragment;
use diesel::query_dsl::LoadQuery;
use diesel::sqlite::Sqlite;
use parley_kernel::{Cursor, Page, PageRequest, SessionId, StoreError, Timestamp, UserId};
use parley_sessions::{Session, SessionError, SessionMessage, SessionRepository};

use crate::SqliteStore;
use crate::rows::{CorruptRow, keyset, to_micros};
use crate::schema::{session_messages, sessions};
use crate::session_rows::{SessionMessageRow, SessionRow};

/// Séance sessions and their messages.
pub struct SqliteSessionRepository {
    store: SqliteStore,
}

impl SqliteSessionRepository {
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
    fn into_result(self) -> Result<T, SessionError> {
        match self {
            Self::Done(value) => Ok(value),
            Self::NotFound => Err(SessionError::NotFound),
            Self::Forbidden => Err(SessionError::Forbidden),
            Self::Closed => Err(SessionError::Closed),
        }
    }
}

fn find(conn: &mut SqliteConnection, id: &str) -> QueryResult<Option<SessionRow>> {
    sessions::table.find(id).select(SessionRow::as_select()).first(conn).optional()
}

fn exists(conn: &mut SqliteConnection, id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(sessions::table.find(id))).get_result(conn)
}

fn corrupt_store(error: CorruptRow) -> SessionError {
    SessionError::Store(error.into())
}

/// One page of the open sessions, newest first, after `cursor`.
pub(crate) fn active_page(
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, SqliteConnection, SessionRow> + QueryFragment<Sqlite> + Send + 'static {
    let mut query = sessions::table
        .filter(sessions::closed_at.is_null())
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .limit(limit)
        .select(SessionRow::as_select())
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("sessions.created_at, sessions.id", true, cursor));
    }
    query
}

/// One page of a session's messages, oldest first, after `cursor`.
pub(crate) fn messages_page(
    id: &str,
    cursor: Option<Cursor>,
    limit: i64,
) -> impl LoadQuery<'static, SqliteConnection, SessionMessageRow> + QueryFragment<Sqlite> + Send + 'static {
    let mut query = session_messages::table
        .filter(session_messages::session_id.eq(id.to_owned()))
        .order((session_messages::created_at.asc(), session_messages::id.asc()))
        .limit(limit)
        .select(SessionMessageRow::as_select())
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(keyset("session_messages.created_at, session_messages.id", false, cursor));
    }
    query
}

#[async_trait]
impl SessionRepository for SqliteSessionRepository {
    #[tracing::instrument(skip_all, fields(session_id = %session.id))]
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let row = SessionRow::from_session(session);
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

    #[tracing::instrument(skip_all, fields(session_id = %id))]
    async fn get(&self, id: SessionId) -> Result<Session, SessionError> {
        let key = id.to_string();
        let row = self.store.run(move |conn| find(conn, &key)).await?;
        row.ok_or(SessionError::NotFound)?.into_session().map_err(corrupt_store)
    }

    #[tracing::instrument(skip_all)]
    async fn list_active(&self, page: &PageRequest) -> Result<Page<Session>, StoreError> {
        let cursor = page.cursor();
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    let total: i64 = capped_count!(sessions::table.filter(sessions::closed_at.is_null()), conn);
                    Ok((active_page(cursor, fetch).load::<SessionRow>(conn)?, total))
                })
            })
            .await?;
        let sessions = rows.into_iter().map(SessionRow::into_session).collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(sessions, page, total, |s| Cursor { at: s.created_at, id: s.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(session_id = %id))]
    async fn close(&self, host: UserId, id: SessionId, now: Timestamp) -> Result<Session, SessionError> {
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
        closed.into_result()?.into_session().map_err(corrupt_store)
    }

    #[tracing::instrument(skip_all, fields(session_id = %message.session_id, message_id = %message.id))]
    async fn add_message(&self, message: &SessionMessage) -> Result<(), SessionError> {
        let row = SessionMessageRow::from_message(message);
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

    #[tracing::instrument(skip_all, fields(session_id = %id))]
    async fn messages(&self, id: SessionId, page: &PageRequest) -> Result<Page<SessionMessage>, SessionError> {
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
                    Ok(Outcome::Done((messages_page(&key, cursor, fetch).load::<SessionMessageRow>(conn)?, total)))
                })
            })
            .await?;
        let (rows, total) = found.into_result()?;
        let messages = rows
            .into_iter()
            .map(SessionMessageRow::into_message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt_store)?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(messages, page, total, |m| Cursor { at: m.timestamp, id: m.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(session_id = %id))]
    async fn recent(&self, id: SessionId, limit: usize) -> Result<Vec<SessionMessage>, SessionError> {
        let key = id.to_string();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    if !exists(conn, &key)? {
                        return Ok(Outcome::NotFound);
                    }
                    let rows: Vec<SessionMessageRow> = session_messages::table
                        .filter(session_messages::session_id.eq(&key))
                        .order((session_messages::created_at.desc(), session_messages::id.desc()))
                        .limit(limit)
                        .select(SessionMessageRow::as_select())
                        .load(conn)?;
                    Ok(Outcome::Done(rows))
                })
            })
            .await?;
        found
            .into_result()?
            .into_iter()
            .rev()
            .map(SessionMessageRow::into_message)
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt_store)
    }
}
