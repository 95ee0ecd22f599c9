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
    name: String,
}

impl TestDatabase {
    /// Creates `parley_test_<random>` on the server of `TEST_DATABASE_URL`.
    ///
    /// # Panics
    /// If PostgreSQL cannot be reached: the tests need it.
    pub async fn create() -> Self {
        let admin = admin_database_url();
        let name = format!("parley_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at TEST_DATABASE_URL is needed by the tests: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database: {e}"));
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        Self { url: format!("{base}/{name}"), name }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = admin_database_url();
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
            eprintln!("warning: a test database could not be dropped");
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
