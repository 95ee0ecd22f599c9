//! The connection pool and the time budgets every call runs under.

use std::future::Future;
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use parley_kernel::StoreError;

use crate::error::PgError;

pub(crate) type PgPool = Pool<AsyncPgConnection>;
pub(crate) type PgConnection = Object<AsyncPgConnection>;

/// How long a call waits for a connection, including creating one: with the
/// database down this must fail well inside the API's 2 s budget.
const CHECKOUT_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long a whole repository call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the pool; no connection is opened until one is needed.
pub(crate) fn build(url: &str, max_connections: usize) -> Result<PgPool, StoreError> {
    // `Fast` recycling: the default (`Verified`) sends `SELECT 1` on every
    // checkout, one extra round trip per repository call (docs/performance.md).
    // A connection that died is reported broken by its first failed query and
    // discarded at the next recycle, so the pool still heals by itself.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    // deadpool's own wait/create/recycle timeouts need its `rt_tokio_1`
    // feature, which no workspace dependency enables; `checkout` bounds the
    // whole of `get()` (wait, create and recycle) with tokio instead.
    Pool::builder(manager).max_size(max_connections.max(1)).build().map_err(StoreError::unexpected)
}

/// A connection from the pool, within [`CHECKOUT_TIMEOUT`]. A connection found
/// broken when recycled is dropped and replaced, so the pool heals by itself
/// once the database is back.
pub(crate) async fn checkout(pool: &PgPool) -> Result<PgConnection, PgError> {
    match tokio::time::timeout(CHECKOUT_TIMEOUT, pool.get()).await {
        Ok(connection) => connection.map_err(PgError::from),
        Err(_) => Err(PgError::PoolTimeout),
    }
}

/// Runs one repository call within [`CALL_TIMEOUT`]. If the call is cut short
/// inside a transaction, the connection is left marked broken and the pool
/// discards it instead of reusing it.
pub(crate) async fn bounded<T, E>(call: impl Future<Output = Result<T, E>>) -> Result<T, E>
where
    E: From<PgError>,
{
    tokio::time::timeout(CALL_TIMEOUT, call).await.unwrap_or_else(|_| Err(PgError::CallTimeout.into()))
}
