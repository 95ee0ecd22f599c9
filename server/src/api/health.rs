//! `GET /health`: liveness plus a database ping bounded to one second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Pings the database at most once per [`DatabaseProbe::FRESH_FOR_MS`] milliseconds: callers
/// reuse a fresh answer without taking a lock, and when it is stale one of
/// them pings while the others wait for its answer, so a burst of health
/// checks costs one round trip, not one each.
pub struct DatabaseProbe {
    users: Arc<dyn UserRepository>,
    started: Instant,
    /// The last answer: 0 before the first; otherwise the milliseconds from
    /// `started` to when it was taken, plus one, shifted left once, with the
    /// answer in the low bit.
    last: AtomicU64,
    /// Held by the caller that pings.
    pinging: tokio::sync::Mutex<()>,
}

impl DatabaseProbe {
    const FRESH_FOR_MS: u64 = 500;
    const TIMEOUT: Duration = Duration::from_secs(1);

    pub fn new(users: Arc<dyn UserRepository>) -> Self {
        Self { users, started: Instant::now(), last: AtomicU64::new(0), pinging: tokio::sync::Mutex::new(()) }
    }

    async fn reachable(&self) -> bool {
        if let Some(reachable) = self.fresh() {
            return reachable;
        }
        let _pinging = self.pinging.lock().await;
        if let Some(reachable) = self.fresh() {
            return reachable; // another caller pinged while this one waited
        }
        let reachable = matches!(tokio::time::timeout(Self::TIMEOUT, self.users.ping()).await, Ok(Ok(())));
        self.last.store(((self.now() + 1) << 1) | u64::from(reachable), Ordering::Release);
        reachable
    }

    /// The last answer, if it is younger than [`Self::FRESH_FOR_MS`].
    fn fresh(&self) -> Option<bool> {
        let last = self.last.load(Ordering::Acquire);
        let taken = (last >> 1).checked_sub(1)?;
        (self.now().saturating_sub(taken) < Self::FRESH_FOR_MS).then_some(last & 1 == 1)
    }

    /// Milliseconds since `started`.
    fn now(&self) -> u64 {
        self.started.elapsed().as_millis().try_into().unwrap_or(u64::MAX >> 2)
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

#[OpenApi(tag = "ApiTags::Health")]
impl HealthApi {
    /// Health check (no authentication, no envelope).
    #[oai(path = "/health", method = "get", operation_id = "health")]
    async fn health(&self) -> HealthResponse {
        let reachable = self.probe.reachable().await;
        let health = self.body(reachable, Time::now());
        if reachable { HealthResponse::Healthy(Json(health)) } else { HealthResponse::Unhealthy(Json(health)) }
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
        let api = HealthApi { probe: Arc::new(probe(0, || Ok(()))), environment: Environment::Production };
        let lean = Probe::new(&api);
        let now = Time::now();
        for (reachable, template) in [(true, &lean.healthy), (false, &lean.unhealthy)] {
            let expected = serde_json::to_vec(&api.body(reachable, now)).unwrap_or_default();
            assert_eq!(String::from_utf8_lossy(&template.render(&now)), String::from_utf8_lossy(&expected));
        }
    }

    #[tokio::test]
    async fn a_fresh_answer_is_reused_without_pinging_again() {
        let up = probe(1, || Ok(()));
        for _ in 0..3 {
            assert!(up.reachable().await);
        }
        let down = probe(1, || Err(StoreError::Unavailable("gone".into())));
        for _ in 0..3 {
            assert!(!down.reachable().await);
        }
    }
}
