//! Translation of pool and diesel failures into the ports' `StoreError`:
//! the same shape as the PostgreSQL adapter's `error.rs`.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use parley_kernel::StoreError;

use crate::rows::CorruptRow;

/// A failure inside the adapter, before it is mapped to a port's error.
#[derive(Debug)]
pub(crate) enum SqliteError {
    /// No connection was handed out within the wait budget, or none could be opened.
    Checkout(String),
    Query(DieselError),
    /// A stored row did not parse into a domain value.
    Corrupt(CorruptRow),
}

impl From<DieselError> for SqliteError {
    fn from(error: DieselError) -> Self {
        Self::Query(error)
    }
}

impl From<CorruptRow> for SqliteError {
    fn from(error: CorruptRow) -> Self {
        Self::Corrupt(error)
    }
}

impl From<SqliteError> for StoreError {
    fn from(error: SqliteError) -> Self {
        match error {
            SqliteError::Checkout(message) => StoreError::unavailable(message),
            SqliteError::Corrupt(error) => StoreError::unexpected(error),
            // Every write checks its parent rows in its own (immediate)
            // transaction, except the user behind the token: a failed foreign
            // key is that user gone.
            SqliteError::Query(DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _)) => {
                StoreError::OwnerGone
            }
            // A lock still held after the busy timeout is a transient condition.
            SqliteError::Query(error) if is_busy(&error) => StoreError::unavailable(error),
            SqliteError::Query(error) => StoreError::unexpected(error),
        }
    }
}

fn is_busy(error: &DieselError) -> bool {
    matches!(error, DieselError::DatabaseError(_, info)
        if info.message().contains("database is locked") || info.message().contains("database is busy"))
}

impl SqliteError {
    /// Whether this is a unique violation on `column` (`table.column`, as SQLite names it).
    pub(crate) fn violates_unique(&self, column: &str) -> bool {
        matches!(self, Self::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
            if info.message().contains(column))
    }
}

/// Why an owner-scoped operation failed, before it becomes a port error.
#[derive(Debug)]
pub(crate) enum AccessError {
    NotFound,
    Forbidden,
    Sqlite(SqliteError),
}

impl AccessError {
    /// Decides from the owner of the row found by id (if any) whether `owner` may touch it.
    pub(crate) fn check(found: Option<&str>, owner: &str) -> Result<(), Self> {
        match found {
            None => Err(Self::NotFound),
            Some(actual) if actual != owner => Err(Self::Forbidden),
            Some(_) => Ok(()),
        }
    }
}

impl From<SqliteError> for AccessError {
    fn from(error: SqliteError) -> Self {
        Self::Sqlite(error)
    }
}

impl From<DieselError> for AccessError {
    fn from(error: DieselError) -> Self {
        Self::Sqlite(SqliteError::Query(error))
    }
}

impl From<CorruptRow> for AccessError {
    fn from(error: CorruptRow) -> Self {
        Self::Sqlite(SqliteError::Corrupt(error))
    }
}

impl From<AccessError> for parley_tasks::TaskError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::NotFound => Self::NotFound,
            AccessError::Forbidden => Self::Forbidden,
            AccessError::Sqlite(error) => Self::Store(error.into()),
        }
    }
}

impl From<AccessError> for parley_conversations::ConversationError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::NotFound => Self::NotFound,
            AccessError::Forbidden => Self::Forbidden,
            AccessError::Sqlite(error) => Self::Store(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> SqliteError {
        SqliteError::Query(DieselError::DatabaseError(kind, Box::new(message.to_owned())))
    }

    #[test]
    fn a_lock_held_past_the_busy_timeout_is_unavailable() {
        let error = database_error(DatabaseErrorKind::Unknown, "database is locked");
        assert!(matches!(StoreError::from(error), StoreError::Unavailable(_)));
    }

    #[test]
    fn a_failed_foreign_key_is_the_owner_gone() {
        let error = database_error(DatabaseErrorKind::ForeignKeyViolation, "FOREIGN KEY constraint failed");
        assert!(matches!(StoreError::from(error), StoreError::OwnerGone));
    }

    #[test]
    fn other_query_failures_and_corrupt_rows_are_unexpected() {
        let error = database_error(DatabaseErrorKind::Unknown, "no such table: tasks");
        assert!(matches!(StoreError::from(error), StoreError::Unexpected(_)));
        let corrupt = SqliteError::Corrupt(crate::rows::corrupt("id \"x\" is not a UUID"));
        assert!(matches!(StoreError::from(corrupt), StoreError::Unexpected(_)));
    }

    #[test]
    fn a_unique_violation_names_its_column() {
        let error = database_error(DatabaseErrorKind::UniqueViolation, "UNIQUE constraint failed: users.email");
        assert!(error.violates_unique("users.email"));
        assert!(!error.violates_unique("users.id"));
    }

    #[test]
    fn only_the_owner_passes_the_owner_check() {
        assert!(AccessError::check(Some("a"), "a").is_ok());
        assert!(matches!(AccessError::check(Some("b"), "a"), Err(AccessError::Forbidden)));
        assert!(matches!(AccessError::check(None, "a"), Err(AccessError::NotFound)));
    }
}
