//! What every repository's rows share: text ids, microsecond times, and
//! the keyset predicate of a page.

use std::fmt;

use parley_kernel::{StoreError, Timestamp};
use uuid::Uuid;

/// A stored row that no longer parses into its domain type.
#[derive(Debug)]
pub(crate) struct CorruptRow(pub String);

impl fmt::Display for CorruptRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt row: {}", self.0)
    }
}

impl std::error::Error for CorruptRow {}

impl From<CorruptRow> for StoreError {
    fn from(error: CorruptRow) -> Self {
        crate::error::SqliteError::Corrupt(error).into()
    }
}

pub(crate) fn corrupt(what: impl fmt::Display) -> CorruptRow {
    CorruptRow(what.to_string())
}

pub(crate) fn to_micros(at: Timestamp) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn from_micros(micros: i64) -> Result<Timestamp, CorruptRow> {
    chrono::DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt(format!("time {micros} out of range")))
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid, CorruptRow> {
    Uuid::parse_str(text).map_err(|_| corrupt(format!("id {text:?} is not a UUID")))
}

/// `(at, id) < (cursor)` (`before`) or `> (cursor)` over the two named
/// columns: a row value, which SQLite reads as a range of the index on them.
/// Spelled `at < x OR (at = x AND id < y)` it was a filter on the rows from
/// the start of the index, so page 500 read the 10,000 rows before it.
pub(crate) fn keyset<T>(
    columns: &'static str,
    before: bool,
    cursor: parley_kernel::Cursor,
) -> Box<dyn diesel::BoxableExpression<T, diesel::sqlite::Sqlite, SqlType = diesel::sql_types::Bool>> {
    use diesel::sql_types::{BigInt, Bool, Text};
    let op = if before { ") < (" } else { ") > (" };
    Box::new(
        diesel::dsl::sql::<Bool>(&format!("({columns}{op}"))
            .bind::<BigInt, _>(to_micros(cursor.at))
            .sql(", ")
            .bind::<Text, _>(cursor.id.to_string())
            .sql(")"),
    )
}
