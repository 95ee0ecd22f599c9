//! `GET /health`: liveness plus a database ping bounded to one second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parley_users::UserRepository;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::api::ApiTags;
use crate::config::Environment;
use crate::envelope::Time;
use crate::shutdown::Draining;

pub struct HealthApi {
    pub probe: Arc<DatabaseProbe>,
    pub environment: Environment,
    pub draining: Draining,
    /// Checked by readiness when `REDIS_URL` is set.
    pub redis: Option<parley_redis::Redis>,
}

/// Asks the database whether it answers, every time: an answer kept for
/// later would contradict what requests see the moment the database stops
/// or comes back (API.md: `/health` never contradicts the API). At most
/// [`DatabaseProbe::CONCURRENT`] pings run at once, so a flood of probes
/// cannot take the pool from the API; a probe that cannot start and finish
/// its ping within [`DatabaseProbe::TIMEOUT`] says the database is unreachable.
pub struct DatabaseProbe {
    users: Arc<dyn UserRepository>,
    pings: tokio::sync::Semaphore,
}

impl DatabaseProbe {
    const CONCURRENT: usize = 2;
    const TIMEOUT: Duration = Duration::from_secs(1);

    pub fn new(users: Arc<dyn UserRepository>) -> Self {
        Self { users, pings: tokio::sync::Semaphore::new(Self::CONCURRENT) }
    }

    /// Whether the database answers a ping now.
    pub async fn reachable(&self) -> bool {
        let ping = async {
            let _turn = self.pings.acquire().await.ok()?;
            self.users.ping().await.ok()
        };
        matches!(tokio::time::timeout(Self::TIMEOUT, ping).await, Ok(Some(())))
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
    /// The body for a database that is `reachable` or not, at `timestamp`.
    fn body(&self, reachable: bool, timestamp: Time) -> Health {
        let (status, database) = if reachable { ("healthy", "connected") } else { ("unhealthy", "unreachable") };
        Health {
            database: database.to_owned(),
            environment: self.environment.as_str().to_owned(),
            status: status.to_owned(),
            timestamp,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// What an orchestrator's probe is told: an overall status and each check.
#[derive(Debug, Object)]
pub struct Probed {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// Each dependency or condition checked, by name: `process` (`up`),
    /// `database` (`connected` or `unreachable`), `server` (`serving` or
    /// `draining`), and `redis` (`connected` or `unreachable`) when Redis
    /// is configured.
    pub checks: BTreeMap<String, String>,
}

#[derive(ApiResponse)]
pub enum ProbeResponse {
    /// Every check passed.
    #[oai(status = 200)]
    Ok(Json<Probed>),
    /// A check failed.
    #[oai(status = 503)]
    Failed(Json<Probed>),
}

impl ProbeResponse {
    fn from_checks(checks: &[(&str, &str, bool)]) -> Self {
        let passed = checks.iter().all(|(_, _, ok)| *ok);
        let probed = Probed {
            status: if passed { "healthy" } else { "unhealthy" }.to_owned(),
            checks: checks.iter().map(|(name, state, _)| ((*name).to_owned(), (*state).to_owned())).collect(),
        };
        if passed { Self::Ok(Json(probed)) } else { Self::Failed(Json(probed)) }
    }
}

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check (no authentication, no envelope).
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> HealthResponse {
        let reachable = self.probe.reachable().await;
        let health = self.body(reachable, Time::now());
        if reachable { HealthResponse::Healthy(Json(health)) } else { HealthResponse::Unhealthy(Json(health)) }
    }

    /// Liveness: the process serves requests. Checks no dependency.
    #[oai(path = "/health/live", method = "get", operation_id = "health_live")]
    async fn live(&self) -> ProbeResponse {
        ProbeResponse::from_checks(&[("process", "up", true)])
    }

    /// Readiness: the database (and Redis, when configured) answers and the
    /// server is not draining.
    #[oai(path = "/health/ready", method = "get", operation_id = "health_ready")]
    async fn ready(&self) -> ProbeResponse {
        let draining = self.draining.is_draining();
        let (reachable, redis) = match &self.redis {
            None => (self.probe.reachable().await, None),
            Some(redis) => {
                let (database, redis) = tokio::join!(self.probe.reachable(), redis.ping());
                (database, Some(redis))
            }
        };
        let state = |up: bool| if up { "connected" } else { "unreachable" };
        let mut checks = vec![
            ("database", state(reachable), reachable),
            ("server", if draining { "draining" } else { "serving" }, !draining),
        ];
        if let Some(up) = redis {
            checks.push(("redis", state(up), up));
        }
        ProbeResponse::from_checks(&checks)
    }
}

/// The lean route probes call: the documented operation's check and body,
/// without poem-openapi's JSON values or a router (docs/performance.md). Each
/// body is the serde rendering of [`Health`], made once at start-up with the
/// timestamp left out, so a request only writes the time between its halves.
pub struct Probe {
    database: Arc<DatabaseProbe>,
    healthy: BodyTemplate,
    unhealthy: BodyTemplate,
}

/// A JSON body split around its timestamp.
struct BodyTemplate {
    head: String,
    tail: String,
}

impl BodyTemplate {
    fn new(health: &Health) -> Self {
        let time = health.timestamp.render();
        let json = serde_json::to_string(health).unwrap_or_default();
        let (head, tail) = json.split_once(&time).unwrap_or((&json, ""));
        Self { head: head.to_owned(), tail: tail.to_owned() }
    }

    fn render(&self, time: &Time) -> Vec<u8> {
        let time = time.render();
        let mut body = Vec::with_capacity(self.head.len() + time.len() + self.tail.len());
        body.extend_from_slice(self.head.as_bytes());
        body.extend_from_slice(time.as_bytes());
        body.extend_from_slice(self.tail.as_bytes());
        body
    }
}

impl Probe {
    pub fn new(api: &HealthApi) -> Self {
        let epoch = Time::from(chrono::DateTime::UNIX_EPOCH);
        Self {
            database: Arc::clone(&api.probe),
            healthy: BodyTemplate::new(&api.body(true, epoch)),
            unhealthy: BodyTemplate::new(&api.body(false, epoch)),
        }
    }
}

impl poem::Endpoint for Probe {
    type Output = poem::Response;

    async fn call(&self, request: poem::Request) -> poem::Result<poem::Response> {
        use poem::http::{HeaderValue, Method, StatusCode, header};

        let head = match *request.method() {
            Method::GET => false,
            Method::HEAD => true,
            _ => return Err(poem::error::MethodNotAllowedError.into()),
        };
        let (status, template) = if self.database.reachable().await {
            (StatusCode::OK, &self.healthy)
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, &self.unhealthy)
        };
        let body = if head { Vec::new() } else { template.render(&Time::now()) };
        Ok(poem::Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"))
            .body(body))
    }
}

#[cfg(test)]
mod tests {
    use parley_kernel::StoreError;
    use parley_users::MockUserRepository;

    use super::*;
    use crate::config::Environment;

    fn probe(pings: usize, answer: fn() -> Result<(), StoreError>) -> DatabaseProbe {
        let mut users = MockUserRepository::new();
        users.expect_ping().times(pings).returning(answer);
        DatabaseProbe::new(Arc::new(users))
    }

    #[test]
    fn the_lean_body_is_the_serde_rendering_of_health() {
        let draining = crate::shutdown::Drain::new().1;
        let api = HealthApi {
            probe: Arc::new(probe(0, || Ok(()))),
            environment: Environment::Production,
            draining,
            redis: None,
        };
        let lean = Probe::new(&api);
        let now = Time::now();
        for (reachable, template) in [(true, &lean.healthy), (false, &lean.unhealthy)] {
            let expected = serde_json::to_vec(&api.body(reachable, now)).unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(&template.render(&now)), String::from_utf8_lossy(&expected));
        }
    }

    #[tokio::test]
    async fn every_probe_asks_the_database_so_no_answer_is_stale() {
        let up = probe(3, || Ok(()));
        for _ in 0..3 {
            assert!(up.reachable().await);
        }
        let down = probe(2, || Err(StoreError::Unavailable("gone".into())));
        for _ in 0..2 {
            assert!(!down.reachable().await);
        }
    }
}
