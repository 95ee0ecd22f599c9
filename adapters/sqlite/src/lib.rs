//! Embedded SQLite adapters for Parley's repository ports.
#![doc = include_str!("../README.md")]

/// `count(*)` of `$query` that reads at most `TOTAL_CAP + 1` matching rows:
/// when a row exists past the cap it says `TOTAL_CAP + 1` without counting
/// the rest (API.md: `total` is exact up to 10,000). `$query` is evaluated twice.
/// The probe's `1` is a bind parameter, not SQL text, so diesel keeps the
/// statement prepared instead of parsing it on every list.
macro_rules! capped_count {
    ($query:expr, $conn:expr) => {{
        use diesel::{IntoSql as _, OptionalExtension as _};
        let cap = i64::try_from(parley_kernel::TOTAL_CAP).unwrap_or(i64::MAX);
        let past_cap: Option<i32> = $query
            .select(1_i32.into_sql::<diesel::sql_types::Integer>())
            .offset(cap)
            .limit(1)
            .get_result($conn)
            .optional()?;
        match past_cap {
            Some(_) => cap + 1,
            None => $query.count().get_result::<i64>($conn)?,
        }
    }};
}

mod conversation_rows;
mod conversations;
mod error;
#[cfg(test)]
mod plans;
mod room_rows;
mod rooms;
mod rows;
mod schema;
mod store;
mod task_rows;
mod tasks;
mod users;

pub use conversations::SqliteConversationRepository;
pub use rooms::SqliteRoomRepository;
pub use store::SqliteStore;
pub use tasks::SqliteTaskRepository;
pub use users::SqliteUserRepository;
