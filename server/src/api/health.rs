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

// Fields in alphabetical order, as poem-openapi writes objects, so that both
// routes' bodies are byte for byte alike.
#[derive(Debug, Object, serde::Serialize)]
pub struct Health {
    /// `connected` or `unreachable`.
    pub database: String,
    pub environment: String,
    /// `healthy` or `unhealthy`.
    pub status: String,
    #[serde(serialize_with = "render_time")]
    pub timestamp: Time,
    pub version: String,
}

fn render_time<S: serde::Serializer>(time: &Time, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&time.render())
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

impl HealthApi {
    /// The check both routes answer with: whether the database answers, and the body.
    async fn check(&self) -> (bool, Health) {
        let reachable = self.probe.reachable().await;
        let (status, database) = if reachable { ("healthy", "connected") } else { ("unhealthy", "unreachable") };
        let health = Health {
            database: database.to_owned(),
            environment: self.environment.as_str().to_owned(),
            status: status.to_owned(),
            timestamp: Time::now(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        (reachable, health)
    }
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check (no authentication, no envelope).
    #[oai(path = "/health", method = "get")]
    async fn health(&self) -> HealthResponse {
        match self.check().await {
            (true, health) => HealthResponse::Healthy(Json(health)),
            (false, health) => HealthResponse::Unhealthy(Json(health)),
        }
    }
}

/// The lean route probes call: the same check as the documented operation,
/// serialised straight to JSON rather than through poem-openapi's JSON values
/// (a quarter of the request's CPU; docs/performance.md).
#[poem::handler]
pub async fn probe(api: poem::web::Data<&Arc<HealthApi>>) -> poem::Response {
    use poem::http::StatusCode;

    let (reachable, health) = api.check().await;
    let status = if reachable { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    match serde_json::to_vec(&health) {
        Ok(body) => poem::Response::builder().status(status).content_type("application/json; charset=utf-8").body(body),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into(),
    }
}
