//! Shared vocabulary of every Parley domain: typed ids, the clock, pagination
//! and the store failures every repository port can report.
#![doc = include_str!("../README.md")]

mod clock;
mod error;
mod id;
mod page;

#[cfg(feature = "mock")]
pub use clock::MockClock;
pub use clock::{Clock, SystemClock};
pub use error::{BoxError, PoolStatus, StoreError};
pub use id::{ConversationId, IdParseError, MessageId, RoomId, RoomMessageId, TaskId, UserId};
pub use page::{Cursor, CursorError, LimitError, Page, PageRequest, TOTAL_CAP};

/// A point in time, always UTC.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
