//! The Parley server: configuration, the HTTP/WebSocket API generated with
//! poem-openapi, and the wiring of adapters into application services.
#![doc = include_str!("../README.md")]

mod abuse;
mod allow;
mod api;
pub mod asyncapi;
mod body;
pub mod config;
mod envelope;
mod error;
pub mod listener;
pub mod metrics;
mod middleware;
mod rate_limit;
mod rooms;
mod security;
pub mod shutdown;
mod store;
pub use store::Stores;
pub mod telemetry;
mod wiring;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use poem::middleware::Cors;
use poem::{EndpointExt, Route};
use poem_openapi::OpenApiService;
use secrecy::ExposeSecret as _;

pub use config::Settings;

use crate::config::{CorsOrigins, Metrics};

use crate::api::{
    auth::AuthApi, chat::ChatApi, chatkit::ChatKitApi, chatkit_protocol::ChatKitProtocolApi, edits::EditsApi,
    health::HealthApi, sessions::SessionsApi, tasks::TasksApi,
};
use crate::wiring::{Services, services};

fn health_api(services: &Services, settings: &Settings, draining: &shutdown::Draining) -> HealthApi {
    HealthApi {
        probe: services.probe.clone(),
        environment: settings.environment,
        draining: draining.clone(),
        redis: services.redis.clone(),
    }
}

type Apis = (HealthApi, AuthApi, TasksApi, EditsApi, ChatApi, ChatKitApi, ChatKitProtocolApi, SessionsApi);

fn openapi(services: &Services, settings: &Settings, draining: &shutdown::Draining) -> OpenApiService<Apis, ()> {
    let apis = (
        health_api(services, settings, draining),
        AuthApi { auth: services.auth.clone(), throttle: Arc::new(abuse::AuthThrottle::new(settings.login_limits)) },
        TasksApi { tasks: services.tasks.clone() },
        EditsApi { tasks: services.tasks.clone(), assistant: services.assistant.clone() },
        ChatApi { assistant: services.assistant.clone() },
        ChatKitApi { assistant: services.assistant.clone(), draining: draining.clone() },
        ChatKitProtocolApi { assistant: services.assistant.clone(), draining: draining.clone() },
        SessionsApi { rooms: services.rooms.clone() },
    );
    described(apis)
}

/// The service over `apis`, titled and described as the document is.
fn described<T: poem_openapi::OpenApi>(apis: T) -> OpenApiService<T, ()> {
    OpenApiService::new(apis, "Parley API", env!("CARGO_PKG_VERSION")).description(
        "Users, tasks, an AI assistant with task tools, and séance rooms. See docs/ for the WebSocket protocol.",
    )
}

/// The API's operations and types without its handlers: all the OpenAPI
/// document is made of (`meta` and `register` are the types' own), so
/// printing it needs no store, services or settings.
struct Documented<T>(std::marker::PhantomData<T>);

impl<T: poem_openapi::OpenApi> poem_openapi::OpenApi for Documented<T> {
    fn meta() -> Vec<poem_openapi::registry::MetaApi> {
        T::meta()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn add_routes(
        self,
        _: &mut std::collections::HashMap<
            String,
            std::collections::HashMap<poem::http::Method, poem::endpoint::BoxEndpoint<'static>>,
        >,
    ) {
    }
}

fn document() -> OpenApiService<Documented<Apis>, ()> {
    described(Documented(std::marker::PhantomData))
}

/// The generated OpenAPI document as YAML (what `parley openapi --yaml` prints).
#[must_use]
pub fn openapi_yaml() -> String {
    document().spec_yaml()
}

/// The generated OpenAPI document as JSON (what `parley openapi` prints).
#[must_use]
pub fn openapi_json() -> String {
    document().spec()
}

/// `GET /asyncapi.json`: the séance WebSocket's AsyncAPI 3.0 document.
#[poem::handler]
fn asyncapi_json() -> poem::web::Json<serde_json::Value> {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> = std::sync::LazyLock::new(asyncapi::document);
    poem::web::Json(DOCUMENT.clone())
}

/// Runs the migrations of the configured store; the versions it applied.
///
/// # Errors
/// If the store cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings) -> anyhow::Result<Vec<String>> {
    let store = Stores::connect(settings.database_url.expose_secret(), 2).context("DATABASE_URL")?;
    store.migrate().await.context("running migrations")
}

/// A bound, ready server.
pub struct Application {
    listener: tokio::net::TcpListener,
    port: u16,
    endpoint: Front,
    drain: shutdown::Drain,
    draining: shutdown::Draining,
    grace: Duration,
    limits: listener::Limits,
    metrics_listener: Option<(tokio::net::TcpListener, MetricsEndpoint)>,
}

/// Sends `GET /health` to the lean probe, with only the request id, and
/// everything else to the API. A plain comparison: an outer `Route` nesting
/// the API would rewrite every API request's URI on the way in.
struct Front {
    probe: api::health::Probe,
    api: poem::endpoint::BoxEndpoint<'static>,
    /// The `Allow` header of a 405, per route.
    allowed: allow::AllowedMethods,
    routes: metrics::Routes,
    /// `/metrics` is served here unless `METRICS_ADDR` moves it.
    metrics: Option<MetricsEndpoint>,
    /// Whether requests are counted (not with `METRICS_ADDR=off`).
    record: bool,
}

/// `GET /metrics`: the Prometheus text format, pool gauges read at scrape time.
#[derive(Clone)]
struct MetricsEndpoint {
    store: Stores,
}

impl poem::Endpoint for MetricsEndpoint {
    type Output = poem::Response;

    async fn call(&self, request: poem::Request) -> poem::Result<poem::Response> {
        if request.uri().path() != "/metrics" {
            return Err(poem::error::NotFoundError.into());
        }
        let status = self.store.pool_status();
        metrics::pool(status.max_size, status.size, status.idle, status.waiting);
        let text = metrics::handle().map(metrics_exporter_prometheus::PrometheusHandle::render).unwrap_or_default();
        Ok(poem::Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(text))
    }
}

impl poem::Endpoint for Front {
    type Output = poem::Response;

    async fn call(&self, request: poem::Request) -> poem::Result<poem::Response> {
        let route = self.record.then(|| self.routes.template(request.uri().path()));
        let path = request.uri().clone();
        let response = match (path.path(), &self.metrics) {
            ("/health", _) => middleware::request_id(&self.probe, request, route).await?,
            ("/metrics", Some(metrics)) => middleware::request_id(metrics, request, route).await?,
            _ => middleware::request_id(&self.api, request, route).await?,
        };
        Ok(self.allowed.annotate(path.path(), response))
    }
}

/// The methods of every route: the document's operations and the routes beside them.
fn allowed_methods(api: &OpenApiService<Apis, ()>) -> allow::AllowedMethods {
    let spec = serde_json::from_str(&api.spec()).unwrap_or_default();
    allow::AllowedMethods::from_spec(
        &spec,
        &[
            ("/api/v1/sessions/{id}/ws", &["GET"]),
            ("/openapi.json", &["GET"]),
            ("/openapi.yaml", &["GET"]),
            ("/docs", &["GET"]),
            ("/redoc", &["GET"]),
        ],
    )
}

/// Connects the store, runs migrations, wires the services and binds the port.
///
/// # Errors
/// If the store cannot be migrated or the address cannot be bound.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let (drain, draining) = shutdown::Drain::new();
    if settings.metrics != Metrics::Off {
        metrics::handle(); // record from the first request on
    }
    let store = Stores::connect(settings.database_url.expose_secret(), settings.database_max_connections)
        .context("DATABASE_URL")?;
    let applied = store.migrate().await.context("running database migrations")?;
    if !applied.is_empty() {
        tracing::info!(applied = ?applied, "applied database migrations");
    }
    let services = services(&settings, store.clone())?;
    let api = openapi(&services, &settings, &draining);
    let mut route_templates: Vec<String> = serde_json::from_str::<serde_json::Value>(&api.spec())
        .ok()
        .and_then(|spec| spec["paths"].as_object().map(|paths| paths.keys().cloned().collect()))
        .unwrap_or_default();
    route_templates.extend(
        ["/api/v1/sessions/{id}/ws", "/openapi.json", "/openapi.yaml", "/asyncapi.json", "/docs", "/redoc", "/metrics"]
            .map(String::from),
    );
    let allowed = allowed_methods(&api);
    let spec_json = api.spec_endpoint();
    let spec_yaml = api.spec_endpoint_yaml();
    let docs = api.swagger_ui();
    let redoc = api.redoc();
    let cors = Cors::new().expose_headers([
        "x-request-id",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "etag",
    ]);
    let cors = match &settings.cors_origins {
        CorsOrigins::Any => cors.allow_credentials(false),
        CorsOrigins::List(origins) => cors.allow_origins(origins.iter().map(String::as_str)).allow_credentials(true),
    };
    let origins = Arc::new(settings.cors_origins.clone());
    let rooms = Arc::new(
        rooms::RoomEndpoint::new(services.rooms.clone(), services.auth.clone(), draining.clone())
            .keepalive(settings.ws_ping_interval, settings.ws_idle_timeout)
            .connections_per_user(usize::try_from(settings.ws_connections_per_user).unwrap_or(usize::MAX)),
    );
    let limiter = services.rate_limiter.clone();
    let endpoint = Route::new()
        .nest("/", api)
        .at("/api/v1/sessions/:id/ws", poem::get(rooms::upgrade).data(rooms))
        .at("/openapi.json", spec_json)
        .at("/asyncapi.json", poem::get(asyncapi_json))
        .at("/openapi.yaml", spec_yaml)
        .nest("/docs", docs)
        .nest("/redoc", redoc)
        .around(move |next, request| middleware::limits(next, request, limiter.clone()))
        .data(services.auth.clone())
        // Inside CORS, so that error envelopes carry the CORS headers too.
        .catch_all_error(error::catch_all)
        .with(cors)
        .around(move |next, request| middleware::cross_origin(next, request, origins.clone()));
    // Probes get `/health` without the API's middleware (CORS, limits, auth
    // data): none applies to it, and every layer costs (docs/performance.md).
    // The documented operation in `api` is the same handler on the same probe.
    let metrics_endpoint = MetricsEndpoint { store: store.clone() };
    let endpoint = Front {
        probe: api::health::Probe::new(&health_api(&services, &settings, &draining)),
        api: endpoint.boxed(),
        routes: metrics::Routes::new(route_templates.iter().map(String::as_str)),
        metrics: (settings.metrics == Metrics::ApiPort).then(|| metrics_endpoint.clone()),
        record: settings.metrics != Metrics::Off,
        allowed,
    };
    let metrics_listener = match settings.metrics {
        Metrics::Listener(address) => Some((
            tokio::net::TcpListener::bind(address).await.with_context(|| format!("METRICS_ADDR: binding {address}"))?,
            metrics_endpoint,
        )),
        Metrics::ApiPort | Metrics::Off => None,
    };
    let address = format!("{}:{}", settings.host, settings.port);
    let listener = tokio::net::TcpListener::bind(&address).await.with_context(|| format!("binding {address}"))?;
    let port = listener.local_addr().context("the listener has no TCP address")?.port();
    let limits = listener::Limits::new(usize::try_from(settings.max_connections).unwrap_or(usize::MAX));
    Ok(Application {
        listener,
        port,
        endpoint,
        drain,
        draining,
        grace: settings.shutdown_grace,
        limits,
        metrics_listener,
    })
}

impl Application {
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM or Ctrl-C, then drains in-flight requests.
    ///
    /// # Errors
    /// If the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` resolves, then drains as on SIGTERM (tests stop
    /// a server this way).
    ///
    /// # Errors
    /// If the server fails.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let drain = self.drain;
        tokio::spawn(async move {
            stop.await;
            drain.start();
            // Holding `drain` keeps the signal set for every reader until the process ends.
            std::future::pending::<()>().await;
        });
        if let Some((metrics_listener, endpoint)) = self.metrics_listener {
            let draining = self.draining.clone();
            tokio::spawn(listener::serve(
                metrics_listener,
                Arc::new(endpoint),
                listener::Limits::new(64),
                draining,
                self.grace,
            ));
        }
        listener::serve(self.listener, Arc::new(self.endpoint), self.limits, self.draining, self.grace).await
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = terminate => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}
