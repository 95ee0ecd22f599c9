//! Translation of pool and diesel failures into the ports' `StoreError`.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::PoolError as ManagerError;
use diesel_async::pooled_connection::deadpool::PoolError;
use parley_kernel::StoreError;

/// A failure inside the adapter, before it is mapped to a port's error.
#[derive(Debug)]
pub(crate) enum PgError {
    Pool(PoolError),
    Query(DieselError),
    /// A query failed and its connection closed under it: the server went
    /// away (shutdown, restart, crash) or the network did.
    Lost(DieselError),
    /// No connection was handed out within the wait budget.
    PoolTimeout,
    /// The whole call overran its time budget.
    CallTimeout,
    /// A stored row did not parse into a domain value.
    Corrupt(String),
}

impl From<DieselError> for PgError {
    fn from(error: DieselError) -> Self {
        Self::Query(error)
    }
}

impl From<PoolError> for PgError {
    fn from(error: PoolError) -> Self {
        Self::Pool(error)
    }
}

/// An error a pooled call can return: it may carry a [`PgError`], which the
/// pool inspects to discard a lost connection and retry a read.
pub(crate) trait CallFailure: From<PgError> {
    fn pg(&self) -> Option<&PgError>;
    fn pg_mut(&mut self) -> Option<&mut PgError>;
}

impl CallFailure for PgError {
    fn pg(&self) -> Option<&PgError> {
        Some(self)
    }

    fn pg_mut(&mut self) -> Option<&mut PgError> {
        Some(self)
    }
}

impl CallFailure for AccessError {
    fn pg(&self) -> Option<&PgError> {
        match self {
            Self::Pg(error) => Some(error),
            Self::NotFound | Self::Forbidden => None,
        }
    }

    fn pg_mut(&mut self) -> Option<&mut PgError> {
        match self {
            Self::Pg(error) => Some(error),
            Self::NotFound | Self::Forbidden => None,
        }
    }
}

impl PgError {
    /// A database error diesel has no kind for: among them those the server
    /// sends as it closes the connection (57P01-57P03, FATAL).
    pub(crate) fn is_unclassified_database_error(&self) -> bool {
        matches!(self, Self::Query(DieselError::DatabaseError(DatabaseErrorKind::Unknown, _)))
    }

    /// The query's connection is gone: the call may work on another one.
    pub(crate) fn is_connection_lost(&self) -> bool {
        match self {
            Self::Lost(_) => true,
            Self::Query(error) => is_connection_failure(error),
            Self::Pool(_) | Self::PoolTimeout | Self::CallTimeout | Self::Corrupt(_) => false,
        }
    }

    /// Records that the connection closed under this query error.
    pub(crate) fn mark_connection_lost(&mut self) {
        let current = std::mem::replace(self, Self::CallTimeout);
        *self = match current {
            Self::Query(error) => Self::Lost(error),
            other => other,
        };
    }

    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(format!("stored row is invalid: {what}"))
    }

    /// Whether this is a unique violation of the constraint or unique index `name`.
    pub(crate) fn violates_unique(&self, name: &str) -> bool {
        match self {
            Self::Query(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info)) => {
                info.constraint_name() == Some(name)
            }
            _ => false,
        }
    }
}

impl From<PgError> for StoreError {
    fn from(error: PgError) -> Self {
        match error {
            PgError::PoolTimeout => StoreError::unavailable("timed out waiting for a database connection"),
            PgError::CallTimeout => StoreError::unavailable("the database did not answer in time"),
            PgError::Corrupt(message) => StoreError::unexpected(message),
            PgError::Pool(error) => pool_error(error),
            PgError::Lost(error) => StoreError::unavailable(error),
            PgError::Query(error) if is_connection_failure(&error) => StoreError::unavailable(error),
            PgError::Query(error) if is_owner_gone(&error) => StoreError::OwnerGone,
            PgError::Query(error) => StoreError::unexpected(error),
        }
    }
}

fn pool_error(error: PoolError) -> StoreError {
    let unavailable = match &error {
        PoolError::Backend(ManagerError::ConnectionError(ConnectionError::InvalidConnectionUrl(_))) => false,
        PoolError::Backend(ManagerError::ConnectionError(_)) | PoolError::Timeout(_) | PoolError::Closed => true,
        PoolError::Backend(ManagerError::QueryError(query)) => is_connection_failure(query),
        _ => false,
    };
    if unavailable { StoreError::unavailable(error) } else { StoreError::unexpected(error) }
}

/// A write referenced a user who no longer exists: the foreign key from a
/// row to its owner (`…_user_id_fkey`, `sessions_host_id_fkey`) failed.
fn is_owner_gone(error: &DieselError) -> bool {
    matches!(error, DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info)
        if info.constraint_name().is_some_and(|name| name.ends_with("user_id_fkey") || name.ends_with("host_id_fkey")))
}

/// A query failed because the connection is gone, not because of the query.
fn is_connection_failure(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand, _)
    )
}

/// Why an owner-scoped operation failed, before it becomes a port error.
#[derive(Debug)]
pub(crate) enum AccessError {
    NotFound,
    Forbidden,
    Pg(PgError),
}

impl AccessError {
    /// Decides from the owner of the row found by id (if any) whether `owner` may touch it.
    pub(crate) fn check(found: Option<uuid::Uuid>, owner: uuid::Uuid) -> Result<(), Self> {
        match found {
            None => Err(Self::NotFound),
            Some(actual) if actual != owner => Err(Self::Forbidden),
            Some(_) => Ok(()),
        }
    }
}

impl From<PgError> for AccessError {
    fn from(error: PgError) -> Self {
        Self::Pg(error)
    }
}

impl From<DieselError> for AccessError {
    fn from(error: DieselError) -> Self {
        Self::Pg(PgError::Query(error))
    }
}

impl From<PoolError> for AccessError {
    fn from(error: PoolError) -> Self {
        Self::Pg(PgError::Pool(error))
    }
}

impl From<AccessError> for parley_tasks::TaskError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::NotFound => Self::NotFound,
            AccessError::Forbidden => Self::Forbidden,
            AccessError::Pg(error) => Self::Store(error.into()),
        }
    }
}

impl From<AccessError> for parley_conversations::ConversationError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::NotFound => Self::NotFound,
            AccessError::Forbidden => Self::Forbidden,
            AccessError::Pg(error) => Self::Store(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database_error(kind: DatabaseErrorKind) -> DieselError {
        DieselError::DatabaseError(kind, Box::new("terminating connection due to administrator command".to_owned()))
    }

    #[test]
    fn an_unclassified_error_on_an_open_connection_is_unexpected() {
        let error = PgError::Query(database_error(DatabaseErrorKind::Unknown));
        assert!(error.is_unclassified_database_error());
        assert!(!error.is_connection_lost());
        assert!(matches!(StoreError::from(error), StoreError::Unexpected(_)));
    }

    #[test]
    fn an_error_whose_connection_closed_under_it_is_a_lost_connection_and_unavailable() {
        let mut error = PgError::Query(database_error(DatabaseErrorKind::Unknown));
        error.mark_connection_lost();
        assert!(error.is_connection_lost());
        assert!(matches!(StoreError::from(error), StoreError::Unavailable(_)));
    }

    #[test]
    fn closed_connections_and_failed_sends_are_lost_connections() {
        for kind in [DatabaseErrorKind::ClosedConnection, DatabaseErrorKind::UnableToSendCommand] {
            let error = PgError::Query(database_error(kind));
            assert!(error.is_connection_lost());
            assert!(matches!(StoreError::from(error), StoreError::Unavailable(_)));
        }
    }

    #[test]
    fn timeouts_are_unavailable_but_not_retried_as_lost_connections() {
        for error in [PgError::CallTimeout, PgError::PoolTimeout] {
            assert!(!error.is_connection_lost());
            assert!(matches!(StoreError::from(error), StoreError::Unavailable(_)));
        }
    }

    #[test]
    fn a_unique_violation_is_not_a_connection_failure() {
        let error = PgError::Query(database_error(DatabaseErrorKind::UniqueViolation));
        assert!(!error.is_unclassified_database_error());
        assert!(!error.is_connection_lost());
    }
}
