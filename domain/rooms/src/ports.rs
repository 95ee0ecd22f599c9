//! The room repository port.

use async_trait::async_trait;
use parley_kernel::{Page, PageRequest, RoomId, StoreError, Timestamp, UserId};

use crate::{Room, RoomMessage};

/// Why a room operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RoomError {
    #[error("session not found")]
    NotFound,
    /// The caller is not the room's host.
    #[error("only the host may do this")]
    Forbidden,
    /// The room is closed and takes no more messages.
    #[error("session is closed")]
    Closed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores rooms and the messages said in them. Anyone signed in may read
/// any room; only the host may close one.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RoomRepository: Send + Sync {
    /// Stores a new room.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn create(&self, room: &Room) -> Result<(), StoreError>;

    /// How many rooms hosted by `host` are open (not closed).
    ///
    /// # Errors
    /// `StoreError` if the store fails; a host with no room counts 0.
    async fn count_open(&self, host: UserId) -> Result<u64, StoreError>;

    /// # Errors
    /// - `RoomError::NotFound` if no room has this id;
    /// - `RoomError::Store` if the store fails.
    async fn get(&self, id: RoomId) -> Result<Room, RoomError>;

    /// Active (not closed) rooms, newest first (`created_at`, then id);
    /// `total` counts every active room.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn list_active(&self, page: &PageRequest) -> Result<Page<Room>, StoreError>;

    /// Closes the room at `now` and returns it as stored. Closing a closed
    /// room succeeds and keeps its first `closed_at`.
    ///
    /// # Errors
    /// - `RoomError::NotFound` if no room has this id;
    /// - `RoomError::Forbidden` if `host` is not its host;
    /// - `RoomError::Store` if the store fails.
    async fn close(&self, host: UserId, id: RoomId, now: Timestamp) -> Result<Room, RoomError>;

    /// Stores a message of `message.room_id`. Whether the room is
    /// still active is decided in the same transaction as the insert, so no
    /// message lands after a concurrent close.
    ///
    /// # Errors
    /// - `RoomError::NotFound` if the room does not exist;
    /// - `RoomError::Closed` if it is closed;
    /// - `RoomError::Store` if the store fails.
    async fn add_message(&self, message: &RoomMessage) -> Result<(), RoomError>;

    /// The room's messages, oldest first (`timestamp`, then id); `total`
    /// counts all of them.
    ///
    /// # Errors
    /// - `RoomError::NotFound` if the room does not exist;
    /// - `RoomError::Store` if the store fails.
    async fn messages(&self, id: RoomId, page: &PageRequest) -> Result<Page<RoomMessage>, RoomError>;

    /// The last `limit` messages of the room, oldest first.
    ///
    /// # Errors
    /// - `RoomError::NotFound` if the room does not exist;
    /// - `RoomError::Store` if the store fails.
    async fn recent(&self, id: RoomId, limit: usize) -> Result<Vec<RoomMessage>, RoomError>;
}
