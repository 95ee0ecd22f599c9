//! `GET /health`: liveness plus a database ping bounded to one second.

use std::sync::Arc;
use std::time::Duration;

use parley_users::UserRepository;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::api::ApiTags;
use crate::config::Environment;
use crate::envelope::Time;

pub struct HealthApi {
    pub users: Arc<dyn UserRepository>,
    pub environment: Environment,
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
        let reachable = matches!(tokio::time::timeout(Duration::from_secs(1), self.users.ping()).await, Ok(Ok(())));
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
