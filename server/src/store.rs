//! The store chosen by `DATABASE_URL`: PostgreSQL, or embedded SQLite. One
//! `match` on the URL builds the [`Stores`] bundle every service is wired
//! from, and the contract tests use the same bundle on both stores.

use std::sync::Arc;

use async_trait::async_trait;
use parley_conversations::ConversationRepository;
use parley_kernel::{PoolStatus, StoreError};
use parley_postgres::PgStore;
use parley_sessions::SessionRepository;
use parley_sqlite::SqliteStore;
use parley_tasks::TaskRepository;
use parley_users::UserRepository;

/// What an operator does with a store besides its repositories.
#[async_trait]
trait Admin: Send + Sync {
    async fn migrate(&self) -> Result<Vec<String>, StoreError>;
    fn pool_status(&self) -> PoolStatus;
}

#[async_trait]
impl Admin for PgStore {
    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        PgStore::migrate(self).await
    }

    fn pool_status(&self) -> PoolStatus {
        PgStore::pool_status(self)
    }
}

#[async_trait]
impl Admin for SqliteStore {
    async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        SqliteStore::migrate(self).await
    }

    fn pool_status(&self) -> PoolStatus {
        SqliteStore::pool_status(self)
    }
}

/// One store's repositories, sharing its pool.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserRepository>,
    pub tasks: Arc<dyn TaskRepository>,
    pub conversations: Arc<dyn ConversationRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    admin: Arc<dyn Admin>,
}

impl Stores {
    /// Builds the pool for `url` (`postgres://` or `sqlite://`); connects lazily.
    ///
    /// # Errors
    /// `StoreError` if the URL or pool is unusable.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        Ok(if url.starts_with("sqlite://") {
            let store = SqliteStore::connect(url, max_connections)?;
            Self {
                users: store.users(),
                tasks: store.tasks(),
                conversations: store.conversations(),
                sessions: store.sessions(),
                admin: Arc::new(store),
            }
        } else {
            let store = PgStore::connect(url, max_connections)?;
            Self {
                users: store.users(),
                tasks: store.tasks(),
                conversations: store.conversations(),
                sessions: store.sessions(),
                admin: Arc::new(store),
            }
        })
    }

    /// Applies the pending migrations; their versions, oldest first.
    ///
    /// # Errors
    /// `StoreError` if the migrations cannot run.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        self.admin.migrate().await
    }

    /// The pool's size, idle connections and waiting callers.
    #[must_use]
    pub fn pool_status(&self) -> PoolStatus {
        self.admin.pool_status()
    }
}
