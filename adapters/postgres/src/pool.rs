//! The connection pool and the time budget every call runs under.
//!
//! One deadline covers a whole repository call: the pool wait (or the
//! creation of a connection), every query and the commit. When it passes,
//! the call answers `Unavailable` and its connection is closed, never put
//! back half-used: a query cut short may leave a response in flight or a
//! prepared statement the statement cache does not know about.

use std::time::Duration;

use deadpool::managed::Manager;
use diesel::ConnectionResult;
use diesel::result::ConnectionError;
use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolableConnection, RecyclingMethod,
};
use parley_kernel::StoreError;
use tokio::time::{Instant, timeout_at};

use crate::error::{CallFailure, PgError};

pub(crate) type PgPool = Pool<AsyncPgConnection>;
pub(crate) type PgConnection = Object<AsyncPgConnection>;

/// How long a whole repository call may take, retry included: well inside
/// the API's 2 s for `DATABASE_UNAVAILABLE`, with room for the HTTP layers.
pub(crate) const CALL_BUDGET: Duration = Duration::from_millis(1500);

/// The part of [`CALL_BUDGET`] a call may spend getting a connection
/// (waiting for a free one, or opening one), so that a call that got one
/// late still has time for its queries.
const CHECKOUT_TIMEOUT: Duration = Duration::from_millis(1000);

/// The TCP connect alone; the start-up exchange after it is bounded by
/// [`CHECKOUT_TIMEOUT`].
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Set on every connection: the server cancels a statement its client has
/// long given up on, and ends a transaction left open by a client that
/// vanished, so neither holds locks after the call answered 503.
const SESSION_OPTIONS: &str = "-c statement_timeout=2000 -c idle_in_transaction_session_timeout=5000";

/// TCP keep-alive: an idle pooled connection whose peer vanished without a
/// FIN (host down, network cut) is found dead within about 25 s and closed,
/// instead of being handed out to time out a call.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_RETRIES: u32 = 3;

/// Builds the pool; no connection is opened until one is needed.
pub(crate) fn build(url: &str, max_connections: usize) -> Result<PgPool, StoreError> {
    // `Fast` recycling: the default (`Verified`) sends `SELECT 1` on every
    // checkout, one extra round trip per repository call (docs/performance.md).
    // A connection whose socket closed, or that is left in a transaction, is
    // still discarded at checkout (`is_broken`), so the pool heals by itself.
    let mut config = ManagerConfig::default();
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(|url| Box::pin(connect(url.to_owned())));
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    // deadpool's own wait/create/recycle timeouts need its `rt_tokio_1`
    // feature; one tokio deadline around `get()` bounds all three instead.
    Pool::builder(manager).max_size(max_connections.max(1)).build().map_err(StoreError::unexpected)
}

/// Opens one connection with the keep-alive, connect timeout and session
/// options above added to whatever the URL says.
async fn connect(url: String) -> ConnectionResult<AsyncPgConnection> {
    let mut config: tokio_postgres::Config =
        url.parse().map_err(|error: tokio_postgres::Error| ConnectionError::InvalidConnectionUrl(error.to_string()))?;
    let options = match config.get_options() {
        Some(own) if !own.trim().is_empty() => format!("{SESSION_OPTIONS} {own}"),
        _ => SESSION_OPTIONS.to_owned(),
    };
    config
        .options(options)
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(KEEPALIVE_IDLE)
        .keepalives_interval(KEEPALIVE_INTERVAL)
        .keepalives_retries(KEEPALIVE_RETRIES);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|error| ConnectionError::BadConnection(error.to_string()))?;
    AsyncPgConnection::try_from_client_and_connection(client, connection).await
}

/// A connection from the pool before `deadline` (and within
/// [`CHECKOUT_TIMEOUT`]), for work that manages its own connection
/// (migrations).
pub(crate) async fn checkout(pool: &PgPool) -> Result<PgConnection, PgError> {
    checkout_before(pool, Instant::now() + CHECKOUT_TIMEOUT).await
}

async fn checkout_before(pool: &PgPool, deadline: Instant) -> Result<PgConnection, PgError> {
    let deadline = deadline.min(Instant::now() + CHECKOUT_TIMEOUT);
    match timeout_at(deadline, pool.get()).await {
        Ok(connection) => connection.map_err(PgError::from),
        Err(_) => Err(PgError::PoolTimeout),
    }
}

/// Runs a read within [`CALL_BUDGET`]. A read whose connection was lost
/// under it (it returned nothing: reads are all or nothing) runs once more,
/// within the same budget, on a connection opened for it: the pool's idle
/// ones may have been lost the same way and not be known closed yet. `work`
/// makes the read afresh for each attempt.
pub(crate) async fn read<T, E, W>(pool: &PgPool, work: impl Fn() -> W) -> Result<T, E>
where
    W: AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
    E: CallFailure,
{
    let deadline = Instant::now() + CALL_BUDGET;
    match attempt(pool, deadline, work()).await {
        Err(error) if error.pg().is_some_and(PgError::is_connection_lost) => {
            tracing::warn!(error = ?error.pg(), "connection lost during a read; retrying once on a new connection");
            attempt_on_new_connection(pool, deadline, work()).await
        }
        outcome => outcome,
    }
}

/// Runs `work` on a connection opened for it and closed after it.
async fn attempt_on_new_connection<T, E>(
    pool: &PgPool,
    deadline: Instant,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: CallFailure,
{
    let opening = deadline.min(Instant::now() + CHECKOUT_TIMEOUT);
    let mut conn = match timeout_at(opening, pool.manager().create()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(error)) => return Err(PgError::Pool(deadpool::managed::PoolError::Backend(error)).into()),
        Err(_) => return Err(PgError::PoolTimeout.into()),
    };
    match timeout_at(deadline, work(&mut conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(mut error)) => {
            note_lost_connection(&mut error, &mut conn).await;
            Err(error)
        }
        Err(_) => Err(PgError::CallTimeout.into()),
    }
}

/// Runs a write within [`CALL_BUDGET`], never twice: when the connection is
/// lost, whether it committed is unknown, so the caller is told
/// `Unavailable` and decides.
pub(crate) async fn write<T, E>(
    pool: &PgPool,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: CallFailure,
{
    attempt(pool, Instant::now() + CALL_BUDGET, work).await
}

async fn attempt<T, E>(
    pool: &PgPool,
    deadline: Instant,
    work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: CallFailure,
{
    let mut lease = Lease(Some(checkout_before(pool, deadline).await?));
    let Some(conn) = lease.0.as_mut() else { return Err(PgError::CallTimeout.into()) };
    match timeout_at(deadline, work(conn)).await {
        Ok(Ok(value)) => {
            lease.release();
            Ok(value)
        }
        Ok(Err(mut error)) => {
            if !note_lost_connection(&mut error, conn).await {
                lease.release();
            }
            Err(error)
        }
        // The lease closes the connection.
        Err(_) => Err(PgError::CallTimeout.into()),
    }
}

/// A connection in use by one call. Unless the call released it after
/// finishing with it, it is closed when dropped rather than returned to the
/// pool: the call timed out, lost it, or was itself dropped mid-query (a
/// client that went away), and it may be half-used.
struct Lease(Option<PgConnection>);

impl Lease {
    /// Returns the connection to the pool.
    fn release(&mut self) {
        drop(self.0.take());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            drop(Object::take(conn));
        }
    }
}

/// Marks `error` as a lost connection when its connection closed under it;
/// whether the connection is lost.
async fn note_lost_connection<E: CallFailure>(error: &mut E, conn: &mut AsyncPgConnection) -> bool {
    let Some(pg) = error.pg_mut() else { return false };
    if pg.is_unclassified_database_error() && connection_closed(conn).await {
        pg.mark_connection_lost();
    }
    pg.is_connection_lost()
}

/// Whether the connection closed under a query that failed. The server closes
/// the connection right after the errors that mean it is going away
/// (57P01-57P03, FATAL errors); diesel-async keeps only their message, not
/// their SQLSTATE, so the closing is what tells them from an ordinary error.
/// The error can reach the query a moment before the socket's end reaches
/// the connection's driver, hence a few short looks.
async fn connection_closed(conn: &mut AsyncPgConnection) -> bool {
    for _ in 0..5 {
        if conn.is_broken() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    conn.is_broken()
}
