//! The session repository port.

use async_trait::async_trait;
use parley_kernel::{Page, PageRequest, SessionId, StoreError, Timestamp, UserId};

use crate::{Session, SessionMessage};

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("session not found")]
    NotFound,
    /// The caller is not the session's host.
    #[error("only the host may do this")]
    Forbidden,
    /// The session is closed and takes no more messages.
    #[error("session is closed")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores sessions and the messages said in them. Anyone signed in may read
/// any session; only the host may close one.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SessionRepository: Send + Sync {
    /// Stores a new session.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn create(&self, session: &Session) -> Result<(), StoreError>;

    /// How many sessions hosted by `host` are open (not closed).
    ///
    /// # Errors
    /// `StoreError` if the store fails; a host with no session counts 0.
    async fn count_open(&self, host: UserId) -> Result<u64, StoreError>;

    /// # Errors
    /// - `SessionError::NotFound` if no session has this id;
    /// - `SessionError::Store` if the store fails.
    async fn get(&self, id: SessionId) -> Result<Session, SessionError>;

    /// Active (not closed) sessions, newest first (`created_at`, then id);
    /// `total` counts every active session.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn list_active(&self, page: &PageRequest) -> Result<Page<Session>, StoreError>;

    /// Closes the session at `now` and returns it as stored. Closing a closed
    /// session succeeds and keeps its first `closed_at`.
    ///
    /// # Errors
    /// - `SessionError::NotFound` if no session has this id;
    /// - `SessionError::Forbidden` if `host` is not its host;
    /// - `SessionError::Store` if the store fails.
    async fn close(&self, host: UserId, id: SessionId, now: Timestamp) -> Result<Session, SessionError>;

    /// Stores a message of `message.session_id`. Whether the session is
    /// still active is decided in the same transaction as the insert, so no
    /// message lands after a concurrent close.
    ///
    /// # Errors
    /// - `SessionError::NotFound` if the session does not exist;
    /// - `SessionError::Closed` if it is closed;
    /// - `SessionError::Store` if the store fails.
    async fn add_message(&self, message: &SessionMessage) -> Result<(), SessionError>;

    /// The session's messages, oldest first (`timestamp`, then id); `total`
    /// counts all of them.
    ///
    /// # Errors
    /// - `SessionError::NotFound` if the session does not exist;
    /// - `SessionError::Store` if the store fails.
    async fn messages(&self, id: SessionId, page: &PageRequest) -> Result<Page<SessionMessage>, SessionError>;

    /// The last `limit` messages of the session, oldest first.
    ///
    /// # Errors
    /// - `SessionError::NotFound` if the session does not exist;
    /// - `SessionError::Store` if the store fails.
    async fn recent(&self, id: SessionId, limit: usize) -> Result<Vec<SessionMessage>, SessionError>;
}
