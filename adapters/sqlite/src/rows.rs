//! Conversions shared by the row types: text ids, microsecond times, and
//! the outcome of an owner-scoped lookup.

use std::fmt;

use diesel::result::Error as DieselError;
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
        Self::unexpected(error)
    }
}

impl From<CorruptRow> for DieselError {
    fn from(error: CorruptRow) -> Self {
        Self::DeserializationError(Box::new(error))
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

/// What an owner-scoped lookup by id found.
pub(crate) enum Owned<T> {
    Mine(T),
    NotFound,
    Forbidden,
}

impl<T> Owned<T> {
    /// `Mine` if the row exists and `owner_of_row` is `owner`.
    pub(crate) fn check(row: Option<T>, owner: &str, owner_of_row: impl Fn(&T) -> &str) -> Self {
        match row {
            None => Self::NotFound,
            Some(row) if owner_of_row(&row) == owner => Self::Mine(row),
            Some(_) => Self::Forbidden,
        }
    }

    pub(crate) fn into_result<E>(self, not_found: E, forbidden: E) -> Result<T, E> {
        match self {
            Self::Mine(value) => Ok(value),
            Self::NotFound => Err(not_found),
            Self::Forbidden => Err(forbidden),
        }
    }
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
