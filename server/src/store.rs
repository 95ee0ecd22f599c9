//! The store chosen by `DATABASE_URL`: PostgreSQL, or embedded SQLite. One
//! `match` on the URL builds the [`Stores`] bundle every service is wired
//! from, and the contract tests use the same bundle on both stores.

use std::sync::Arc;

use async_trait::async_trait;
use parley_conversations::ConversationRepository;
use parley_kernel::{PoolStatus, StoreError};
use parley_postgres::PgStore;
use parley_rooms::RoomRepository;
use parley_sqlite::SqliteStore;
use parley_tasks::TaskRepository;
use parley_users::UserRepository;

/// What an operator does with a store besides its repositories.
#[async_trait]
trait Admin: Send + Sync {
    async fn migrate(&self) -> Result<Vec<String>, StoreError>;
    fn pool_status(&self) -> PoolStatus;
}

/// `Admin` by the stores' own methods of the same names.
macro_rules! admin {
    ($($store:ty),*) => {$(
        #[async_trait]
        impl Admin for $store {
            async fn migrate(&self) -> Result<Vec<String>, StoreError> {
                <$store>::migrate(self).await
            }

            fn pool_status(&self) -> PoolStatus {
                <$store>::pool_status(self)
            }
        }
    )*};
}

admin!(PgStore, SqliteStore);

/// The bundle of `store`'s repositories (both stores name them alike).
macro_rules! bundle {
    ($store:expr) => {{
        let store = $store;
        Stores {
            users: store.users(),
            tasks: store.tasks(),
            conversations: store.conversations(),
            rooms: store.rooms(),
            admin: Arc::new(store),
        }
    }};
}

/// One store's repositories, sharing its pool.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserRepository>,
    pub tasks: Arc<dyn TaskRepository>,
    pub conversations: Arc<dyn ConversationRepository>,
    pub rooms: Arc<dyn RoomRepository>,
    admin: Arc<dyn Admin>,
}

impl Stores {
    /// Builds the pool for `url` (`postgres://` or `sqlite://`); connects lazily.
    ///
    /// # Errors
    /// `StoreError` if the URL or pool is unusable.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        Ok(if url.starts_with("sqlite://") {
            bundle!(SqliteStore::connect(url, max_connections)?)
        } else {
            bundle!(PgStore::connect(url, max_connections)?)
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
