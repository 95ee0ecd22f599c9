//! The store chosen by `DATABASE_URL`: PostgreSQL, or embedded SQLite.

use std::sync::Arc;

use parley_conversations::ConversationRepository;
use parley_kernel::StoreError;
use parley_postgres::PgStore;
use parley_sessions::SessionRepository;
use parley_sqlite::SqliteStore;
use parley_tasks::TaskRepository;
use parley_users::UserRepository;

#[derive(Clone)]
pub enum Store {
    Postgres(PgStore),
    Sqlite(SqliteStore),
}

impl Store {
    /// Builds the pool for `url` (`postgres://` or `sqlite://`); connects lazily.
    ///
    /// # Errors
    /// `StoreError` if the URL or pool is unusable.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        if url.starts_with("sqlite://") {
            SqliteStore::connect(url, max_connections).map(Self::Sqlite)
        } else {
            PgStore::connect(url, max_connections).map(Self::Postgres)
        }
    }

    /// Applies the pending migrations; their versions, oldest first.
    ///
    /// # Errors
    /// `StoreError` if the migrations cannot run.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Self::Postgres(store) => store.migrate().await,
            Self::Sqlite(store) => store.migrate().await,
        }
    }

    /// The pool's size, idle connections and waiting callers.
    #[must_use]
    pub fn pool_status(&self) -> parley_kernel::PoolStatus {
        match self {
            Self::Postgres(store) => store.pool_status(),
            Self::Sqlite(store) => store.pool_status(),
        }
    }

    pub fn users(&self) -> Arc<dyn UserRepository> {
        match self {
            Self::Postgres(store) => store.users(),
            Self::Sqlite(store) => store.users(),
        }
    }

    pub fn tasks(&self) -> Arc<dyn TaskRepository> {
        match self {
            Self::Postgres(store) => store.tasks(),
            Self::Sqlite(store) => store.tasks(),
        }
    }

    pub fn conversations(&self) -> Arc<dyn ConversationRepository> {
        match self {
            Self::Postgres(store) => store.conversations(),
            Self::Sqlite(store) => store.conversations(),
        }
    }

    pub fn sessions(&self) -> Arc<dyn SessionRepository> {
        match self {
            Self::Postgres(store) => store.sessions(),
            Self::Sqlite(store) => store.sessions(),
        }
    }
}
