//! `GET /health`: liveness plus a database ping bounded to one second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parley_users::UserRepository;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::api::ApiTags;
use crate::config::Environment;
use crate::envelope::Time;

pub struct HealthApi {
    pub probe: Arc<DatabaseProbe>,
    pub environment: Environment,
}

/// Pings the database at most once per [`DatabaseProbe::FRESH_FOR`]: callers
/// arriving meanwhile wait for the ping in flight or reuse its answer, so a
/// burst of health checks costs one round trip, not one each.
pub struct DatabaseProbe {
    users: Arc<dyn UserRepository>,
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

impl DatabaseProbe {
    const FRESH_FOR: Duration = Duration::from_millis(500);
    const TIMEOUT: Duration = Duration::from_secs(1);

    pub fn new(users: Arc<dyn UserRepository>) -> Self {
        Self { users, last: tokio::sync::Mutex::new(None) }
    }

    async fn reachable(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, reachable)) = *last
            && at.elapsed() < Self::FRESH_FOR
        {
            return reachable;
        }
        let reachable = matches!(tokio::time::timeout(Self::TIMEOUT, self.users.ping()).await, Ok(Ok(())));
        *last = Some((Instant::now(), reachable));
        reachable
    }
}

#[derive(Debug, Object)]
pub struct Health {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// `connected` or `unreachable`.
    pub database: String,
    pub environment: String,
    pub version: String,
    pub timestamp: Time,
}

#[derive(ApiResponse)]
pub enum HealthResponse {
    /// The server and its database answer.
    #[oai(status = 200)]
    Healthy(Json<Health>),
    /// The database did not answer within one second.
    #[oai(status = 503)]
    Unhealthy(Json<Health>),
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check (no authentication, no envelope).
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> HealthResponse {
        let reachable = self.probe.reachable().await;
        let health = |status: &str, database: &str| Health {
            status: status.to_owned(),
            database: database.to_owned(),
            environment: self.environment.as_str().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            timestamp: Time::now(),
        };
        if reachable {
            HealthResponse::Healthy(Json(health("healthy", "connected")))
        } else {
            HealthResponse::Unhealthy(Json(health("unhealthy", "unreachable")))
        }
    }
}
