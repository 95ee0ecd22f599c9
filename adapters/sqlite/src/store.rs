//! The SQLite store: a pool of WAL-mode connections on one file, its
//! migrations, and the repositories built on it.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::result::{ConnectionError, ConnectionResult};
use diesel::{Connection, SqliteConnection};
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use parley_conversations::ConversationRepository;
use parley_kernel::StoreError;
use parley_rooms::RoomRepository;
use parley_tasks::TaskRepository;
use parley_users::UserRepository;

use crate::error::SqliteError;
use crate::{SqliteConversationRepository, SqliteRoomRepository, SqliteTaskRepository, SqliteUserRepository};

type PooledSqlite = SyncConnectionWrapper<SqliteConnection>;

pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// How long a caller waits for a free pooled connection before `Unavailable`.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long opening (and configuring) one connection may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Set on every connection. The busy timeout comes first: switching to WAL
/// itself takes a lock another connection may hold.
const CONNECTION_PRAGMAS: &str = "PRAGMA busy_timeout = 5000;
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA foreign_keys = ON;";

/// A pool of connections on one SQLite file; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    pool: Pool<PooledSqlite>,
    path: Arc<str>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Prepares a pool of at most `max_connections` connections on the file
    /// named by `url` (`sqlite://path/to/file.db`), creating its folder if
    /// missing. Connections are opened on first use.
    ///
    /// # Errors
    /// `StoreError::Unexpected` for a malformed or in-memory URL,
    /// `StoreError::Unavailable` if the folder cannot be created.
    pub fn connect(url: &str, max_connections: usize) -> Result<Self, StoreError> {
        let path = database_path(url)?;
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir(parent).map_err(StoreError::unavailable)?;
        }
        create_private_file(Path::new(path)).map_err(StoreError::unavailable)?;
        let mut config = ManagerConfig::<PooledSqlite>::default();
        config.recycling_method = RecyclingMethod::Fast;
        config.custom_setup = Box::new(|path| {
            let path = path.to_owned();
            Box::pin(async move { open_pooled(path).await })
        });
        let manager = AsyncDieselConnectionManager::new_with_config(path, config);
        let pool = Pool::builder(manager).max_size(max_connections.max(1)).build().map_err(StoreError::unexpected)?;
        Ok(Self { pool, path: Arc::from(path) })
    }

    /// Applies the pending embedded migrations of `migrations/sqlite`.
    ///
    /// # Errors
    /// `Unavailable` if the file cannot be opened, `Unexpected` if a migration fails.
    /// Applies the pending migrations; their versions, oldest first.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let path = Arc::clone(&self.path);
        tokio::task::spawn_blocking(move || {
            let mut conn = open(&path).map_err(StoreError::unavailable)?;
            conn.run_pending_migrations(MIGRATIONS)
                .map(|applied| applied.iter().map(ToString::to_string).collect())
                .map_err(StoreError::Unexpected)
        })
        .await
        .map_err(StoreError::unexpected)?
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
        Arc::new(SqliteUserRepository::new(self.clone()))
    }

    #[must_use]
    pub fn tasks(&self) -> Arc<dyn TaskRepository> {
        Arc::new(SqliteTaskRepository::new(self.clone()))
    }

    #[must_use]
    pub fn conversations(&self) -> Arc<dyn ConversationRepository> {
        Arc::new(SqliteConversationRepository::new(self.clone()))
    }

    #[must_use]
    pub fn rooms(&self) -> Arc<dyn RoomRepository> {
        Arc::new(SqliteRoomRepository::new(self.clone()))
    }

    /// Runs `work` on a pooled connection, off the async workers. Its error
    /// is any that a [`SqliteError`] converts into: `StoreError`, or an
    /// operation's own refusals ([`crate::error::AccessError`], ...), as the
    /// PostgreSQL adapter's `pool::read` and `pool::write` do.
    pub(crate) async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut SqliteConnection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<SqliteError> + Send + 'static,
    {
        let mut conn = tokio::time::timeout(CHECKOUT_TIMEOUT, self.pool.get())
            .await
            .map_err(|_| SqliteError::Checkout("timed out waiting for a SQLite connection".to_owned()))?
            .map_err(|error| SqliteError::Checkout(error.to_string()))?;
        conn.spawn_blocking(move |conn| Ok(work(conn))).await.map_err(SqliteError::Query)?
    }
}

/// Creates the folder (and any missing parent) readable by its owner only
/// (0700 on unix); an existing folder is left as it is.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the database file empty and owner-only (0600 on unix) if it does
/// not exist, before SQLite would create it with the umask's permissions. Its
/// `-wal` and `-shm` files are created by SQLite with the file's permissions.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// The file path in `sqlite://path` (or `sqlite:path`).
fn database_path(url: &str) -> Result<&str, StoreError> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    if path.is_empty() || path.contains(":memory:") || path.starts_with("file:") {
        return Err(StoreError::unexpected(format!(
            "unsupported SQLite URL {url:?}: expected sqlite://path/to/file.db (in-memory databases are not shared between pooled connections)"
        )));
    }
    Ok(path)
}

fn open(path: &str) -> ConnectionResult<SqliteConnection> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute(CONNECTION_PRAGMAS).map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

async fn open_pooled(path: String) -> ConnectionResult<PooledSqlite> {
    let opening = tokio::task::spawn_blocking(move || open(&path));
    match tokio::time::timeout(OPEN_TIMEOUT, opening).await {
        Ok(Ok(opened)) => opened.map(SyncConnectionWrapper::new),
        Ok(Err(join)) => Err(ConnectionError::BadConnection(join.to_string())),
        Err(_) => Err(ConnectionError::BadConnection("timed out opening the SQLite file".to_owned())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_file_urls_are_accepted() {
        assert_eq!(database_path("sqlite://data/parley.db").ok(), Some("data/parley.db"));
        assert_eq!(database_path("sqlite:///tmp/p.db").ok(), Some("/tmp/p.db"));
        assert!(database_path("sqlite::memory:").is_err());
        assert!(database_path("sqlite://").is_err());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_database_file_and_its_folder_are_owner_only() {
        use std::os::unix::fs::PermissionsExt;

        let root = std::env::temp_dir().join(format!("parley-sqlite-mode-{}", uuid::Uuid::new_v4().simple()));
        let dir = root.join("data");
        let file = dir.join("parley.db");
        let store = SqliteStore::connect(&format!("sqlite://{}", file.display()), 1).expect("connect");
        store.migrate().await.expect("migrate");
        store.users().ping().await.expect("a pooled connection works");
        let mode = |path: &Path| std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777);
        let modes = (mode(&root), mode(&dir), mode(&file), mode(&dir.join("parley.db-wal")));
        let _ = std::fs::remove_dir_all(&root);
        assert_eq!(modes.0.ok(), Some(0o700), "a folder the server created");
        assert_eq!(modes.1.ok(), Some(0o700), "the database's folder");
        assert_eq!(modes.2.ok(), Some(0o600), "the database file");
        assert_eq!(modes.3.ok(), Some(0o600), "its write-ahead log");
    }
}
