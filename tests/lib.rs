//! Fixtures shared by the API tests and the repository contract suite:
//! throwaway PostgreSQL databases and SQLite files, dropped after each test.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

/// Where the throwaway PostgreSQL databases are created.
#[must_use]
pub fn admin_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh, empty PostgreSQL database, dropped when this value is dropped.
pub struct TestDatabase {
    pub url: String,
    admin: String,
    name: String,
}

impl TestDatabase {
    /// Creates `parley_test_<random>` on the server of `TEST_DATABASE_URL`.
    ///
    /// # Panics
    /// If PostgreSQL cannot be reached: the tests need it.
    pub async fn create() -> Self {
        Self::create_on(&admin_database_url(), "parley_test")
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at TEST_DATABASE_URL is needed by the tests: {e}"))
    }

    /// Creates `<prefix>_<random>` on the server `admin` connects to.
    ///
    /// # Errors
    /// If the server cannot be reached or the database cannot be created.
    pub async fn create_on(admin: &str, prefix: &str) -> Result<Self, String> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(admin).await.map_err(|e| format!("connecting to {admin}: {e}"))?;
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .map_err(|e| format!("CREATE DATABASE {name}: {e}"))?;
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        Ok(Self { url: format!("{base}/{name}"), admin: admin.to_owned(), name })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = std::mem::take(&mut self.admin);
        let name = std::mem::take(&mut self.name);
        // Drop runs inside or outside a runtime; a thread with its own runtime works in both.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&admin).await.ok()?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(_))) {
            eprintln!("warning: a throwaway database could not be dropped");
        }
    }
}

/// A fresh SQLite database file in its own temporary folder, removed on drop.
pub struct TestSqliteFile {
    pub url: String,
    dir: std::path::PathBuf,
}

impl TestSqliteFile {
    #[must_use]
    pub fn create() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "parley-test-{}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            uuid::Uuid::new_v4().simple()
        ));
        let url = format!("sqlite://{}", dir.join("parley.db").display());
        Self { url, dir }
    }
}

impl Drop for TestSqliteFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The Redis the tests share: `TEST_REDIS_URL`, else the local default.
#[must_use]
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A key prefix of its own on a Redis server, so that tests sharing one
/// Redis never see each other's keys; every key under it is deleted on drop.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// A fresh prefix on the Redis of `TEST_REDIS_URL`.
    #[must_use]
    pub fn create() -> Self {
        Self::on(&redis_url())
    }

    /// A fresh prefix on the Redis at `url`.
    #[must_use]
    pub fn on(url: &str) -> Self {
        Self { url: url.to_owned(), prefix: format!("parley-test-{}:", uuid::Uuid::new_v4().simple()) }
    }

    /// The settings that put a server on this Redis and prefix.
    #[must_use]
    pub fn settings(&self) -> [(&'static str, String); 2] {
        [("REDIS_URL", self.url.clone()), ("REDIS_KEY_PREFIX", self.prefix.clone())]
    }

    /// How many keys exist under the prefix now.
    ///
    /// # Errors
    /// If Redis cannot be reached.
    pub fn keys(&self) -> redis::RedisResult<Vec<String>> {
        let mut connection = redis::Client::open(self.url.as_str())?.get_connection()?;
        let pattern = format!("{}*", self.prefix);
        let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut connection)?;
        Ok(keys)
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let deleted = (|| -> redis::RedisResult<()> {
            let keys = self.keys()?;
            if !keys.is_empty() {
                let mut connection = redis::Client::open(self.url.as_str())?.get_connection()?;
                redis::cmd("DEL").arg(&keys).query::<i64>(&mut connection)?;
            }
            Ok(())
        })();
        if deleted.is_err() {
            eprintln!("warning: the keys of a test's Redis prefix could not be deleted");
        }
    }
}
