//! Failures any repository port may report besides its business errors.

/// Boxed cause of an infrastructure failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The store could not do what was asked for a reason outside the domain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached now (pool timeout, refused connection);
    /// the request may succeed later.
    #[error("the store is unavailable")]
    Unavailable(#[source] BoxError),
    /// The user a write was made for no longer exists (an operator removed
    /// the account while one of its tokens was still valid).
    #[error("the user no longer exists")]
    OwnerGone,
    /// Anything else: a bug, corrupt data, a failed query.
    #[error("unexpected store failure")]
    Unexpected(#[source] BoxError),
}

impl StoreError {
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        Self::Unavailable(cause.into())
    }

    pub fn unexpected(cause: impl Into<BoxError>) -> Self {
        Self::Unexpected(cause.into())
    }
}

/// A store's connection pool at one moment (for metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolStatus {
    /// The most connections the pool opens.
    pub max_size: usize,
    /// Connections open now.
    pub size: usize,
    /// Open connections nobody holds.
    pub idle: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}
