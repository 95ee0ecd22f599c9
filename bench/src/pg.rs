//! Throwaway PostgreSQL databases and the pgbench baselines.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use parley_tests::TestDatabase;

/// The server the throwaway databases are created on.
#[must_use]
pub fn admin_url() -> String {
    std::env::var("BENCH_DATABASE_URL")
        .or_else(|_| std::env::var("TEST_DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh database `parley_bench_<random>`, dropped with this value
/// (the same throwaway database the tests use).
pub struct BenchDatabase {
    pub url: String,
    _database: TestDatabase,
}

impl BenchDatabase {
    /// # Errors
    /// If PostgreSQL cannot be reached or the database cannot be created.
    pub async fn create() -> anyhow::Result<Self> {
        let admin = admin_url();
        let database = TestDatabase::create_on(&admin, "parley_bench")
            .await
            .map_err(|e| anyhow::anyhow!("{e} (set BENCH_DATABASE_URL)"))?;
        Ok(Self { url: database.url.clone(), _database: database })
    }

    /// Runs `sql` (one statement) on this database.
    ///
    /// # Errors
    /// If the statement fails.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<usize> {
        let mut conn = AsyncPgConnection::establish(&self.url).await.context("connecting to the bench database")?;
        diesel::sql_query(sql).execute(&mut conn).await.with_context(|| format!("running {sql}"))
    }
}

/// The pgbench binary: on PATH, else the PostgreSQL 15 install.
fn pgbench_bin() -> PathBuf {
    if let Ok(path) = std::env::var("PGBENCH") {
        return PathBuf::from(path);
    }
    let packaged = PathBuf::from("/usr/lib/postgresql/15/bin/pgbench");
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("pgbench"))
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or(packaged)
}

/// What pgbench reported.
pub struct PgbenchResult {
    pub tps: f64,
    pub transactions: u64,
    pub latency_avg_ms: Option<f64>,
}

/// `pgbench -n -f <script> -c <clients> -j 2 -T <secs> <url>`; one transaction is the whole script.
///
/// # Errors
/// If pgbench cannot run, fails, or prints no `tps = ` line.
pub async fn pgbench(url: &str, script: &str, clients: usize, duration: Duration) -> anyhow::Result<PgbenchResult> {
    let file = std::env::temp_dir().join(format!("parley-bench-{}.sql", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, script).context("writing the pgbench script")?;
    let secs = duration.as_secs().max(1).to_string();
    let threads = clients.clamp(1, 2).to_string();
    let output = tokio::process::Command::new(pgbench_bin())
        .args(["-n", "-f"])
        .arg(&file)
        .args(["-c", &clients.to_string(), "-j", &threads, "-T", &secs, url])
        .output()
        .await;
    let _ = std::fs::remove_file(&file);
    let output = output.context("running pgbench (set PGBENCH to its path)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!("pgbench failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    }
    let field = |prefix: &str| {
        stdout.lines().find_map(|line| line.trim().strip_prefix(prefix)).and_then(|rest| rest.split_whitespace().next())
    };
    let tps = field("tps = ").and_then(|v| v.parse().ok()).context("no `tps = ` line in pgbench's output")?;
    let transactions = field("number of transactions actually processed: ")
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let latency_avg_ms = field("latency average = ").and_then(|v| v.parse().ok());
    Ok(PgbenchResult { tps, transactions, latency_avg_ms })
}
