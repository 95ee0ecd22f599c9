//! PostgreSQL store: the pool, migrations and the repository adapters.
#![doc = include_str!("../README.md")]

/// The statement that asks whether `$query` matches a row past
/// `TOTAL_CAP`: `SELECT $1 … ORDER BY $order OFFSET cap LIMIT 1`. `$order`
/// is the order of the index the list's pages read: without it, when one
/// user owns most of a table the planner reads it sequentially, and a
/// synchronized scan starting wherever the last one stopped wrapped round to
/// the other users' rows every hundred requests or so (the growth bench's
/// 1,000,000-row p99, fifteenth session). The `1` is a bind parameter, not
/// SQL text, so diesel keeps the statement prepared.
macro_rules! past_cap {
    ($query:expr, $order:expr) => {{
        use diesel::{IntoSql as _, QueryDsl as _};
        $query
            .select(1_i32.into_sql::<diesel::sql_types::Integer>())
            .order($order)
            .offset(i64::try_from(parley_kernel::TOTAL_CAP).unwrap_or(i64::MAX))
            .limit(1)
    }};
}

/// `count(*)` of `$query` that reads at most `TOTAL_CAP + 1` matching rows,
/// in the list's index order `$order` ([`past_cap!`]): when a row exists
/// past the cap it says `TOTAL_CAP + 1` without counting the rest (API.md:
/// `total` is exact up to 10,000). `$query` is evaluated twice.
macro_rules! capped_count {
    ($query:expr, $order:expr, $conn:expr) => {{
        use diesel::OptionalExtension as _;
        let cap = i64::try_from(parley_kernel::TOTAL_CAP).unwrap_or(i64::MAX);
        let past_cap: Option<i32> = past_cap!($query, $order).get_result($conn).await.optional()?;
        match past_cap {
            Some(_) => cap + 1,
            None => $query.count().get_result::<i64>($conn).await?,
        }
    }};
}

mod conversation_rows;
mod conversations;
mod error;
#[cfg(test)]
mod plans;
mod pool;
mod room_rows;
mod rooms;
mod rows;
mod schema;
mod task_rows;
mod tasks;
mod users;

use std::sync::Arc;

use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use parley_conversations::ConversationRepository;
use parley_kernel::StoreError;
use parley_rooms::RoomRepository;
use parley_tasks::TaskRepository;
use parley_users::UserRepository;

pub use conversations::PgConversationRepository;
pub use rooms::PgRoomRepository;
pub use tasks::PgTaskRepository;
pub use users::PgUserRepository;

use crate::pool::PgPool;

/// Whether diesel keeps `query`'s prepared statement for the next call
/// (otherwise every call prepares it again: one more round trip).
#[cfg(test)]
fn statement_is_cached(query: &impl diesel::query_builder::QueryFragment<diesel::pg::Pg>) -> bool {
    query.is_safe_to_cache_prepared(&diesel::pg::Pg).unwrap_or(false)
}

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

/// Key of the advisory lock that serialises migrations across replicas.
const MIGRATION_LOCK_KEY: i64 = 0x7061_726c_6579_6d67; // "parleymg"

/// A handle on one PostgreSQL database: cheap to clone, shares one pool.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("pool", &self.pool.status()).finish()
    }
}

impl PgStore {
    /// Builds the pool; does not fail if the database is down (connections
    /// are made lazily).
    ///
    /// # Errors
    /// `StoreError::Unexpected` if the pool cannot be built.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        Ok(Self { pool: pool::build(url, max_connections)? })
    }

    /// Runs the embedded migrations under a PostgreSQL advisory lock held on
    /// the migrating connection, so replicas may start together; running it
    /// again is a no-op.
    ///
    /// # Errors
    /// `StoreError::Unavailable` if no connection can be had,
    /// `StoreError::Unexpected` if a migration fails.
    /// Applies the pending migrations; their versions, oldest first.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let connection = pool::checkout(&self.pool).await?;
        // The connection leaves the pool: it is closed after migrating, which
        // also releases the lock should unlocking fail.
        let connection = pool::PgConnection::take(connection);
        let mut wrapper: AsyncConnectionWrapper<AsyncPgConnection> = AsyncConnectionWrapper::from(connection);
        tokio::task::spawn_blocking(move || migrate_locked(&mut wrapper)).await.map_err(StoreError::unexpected)?
    }

    /// The pool's size, idle connections and waiting callers (for metrics).
    #[must_use]
    pub fn pool_status(&self) -> parley_kernel::PoolStatus {
        let status = self.pool.status();
        parley_kernel::PoolStatus {
            max_size: status.max_size,
            size: status.size,
            idle: status.available,
            waiting: status.waiting,
        }
    }

    #[must_use]
    pub fn users(&self) -> Arc<dyn UserRepository> {
        Arc::new(PgUserRepository::new(self.pool.clone()))
    }

    #[must_use]
    pub fn tasks(&self) -> Arc<dyn TaskRepository> {
        Arc::new(PgTaskRepository::new(self.pool.clone()))
    }

    #[must_use]
    pub fn conversations(&self) -> Arc<dyn ConversationRepository> {
        Arc::new(PgConversationRepository::new(self.pool.clone()))
    }

    #[must_use]
    pub fn rooms(&self) -> Arc<dyn RoomRepository> {
        Arc::new(PgRoomRepository::new(self.pool.clone()))
    }
}

fn migrate_locked(connection: &mut AsyncConnectionWrapper<AsyncPgConnection>) -> Result<Vec<String>, StoreError> {
    use diesel::RunQueryDsl;
    use diesel::sql_types::BigInt;

    // Pooled connections cancel statements after 2 s; a migration, and the
    // wait for another replica's, may take longer.
    diesel::sql_query("SET statement_timeout = 0").execute(connection).map_err(StoreError::unavailable)?;
    diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(connection)
        .map_err(StoreError::unavailable)?;
    let migrated = connection.run_pending_migrations(MIGRATIONS).map(|applied| {
        tracing::info!(applied = applied.len(), "postgres migrations done");
        applied.iter().map(ToString::to_string).collect()
    });
    let unlocked =
        diesel::sql_query("SELECT pg_advisory_unlock($1)").bind::<BigInt, _>(MIGRATION_LOCK_KEY).execute(connection);
    let migrated = migrated.map_err(StoreError::Unexpected)?;
    unlocked.map(|_| migrated).map_err(StoreError::unexpected)
}
