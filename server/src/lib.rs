//! The Parley server: configuration, the HTTP/WebSocket API generated with
//! poem-openapi, and the wiring of adapters into application services.
#![doc = include_str!("../README.md")]

mod api;
mod body;
pub mod config;
mod envelope;
mod error;
mod middleware;
mod rate_limit;
mod rooms;
mod security;
pub mod shutdown;
mod store;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use parley_application::{AssistantService, AuthService, RateLimiter, SessionService, TaskService};
use parley_auth::{Argon2PasswordHasher, HasherConfig, PasetoTokenService};
use parley_conversations::LanguageModel;
use parley_kernel::{StoreError, SystemClock};
use parley_llm::{OfflineAssistant, OfflineSpirit, OpenAiConfig, OpenAiLanguageModel};
use poem::http::uri::Scheme;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};
use poem::middleware::Cors;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{EndpointExt, Route, Server};
use poem_openapi::OpenApiService;

pub use config::Settings;

use crate::config::CorsOrigins;

use crate::api::health::DatabaseProbe;
use crate::api::{
    auth::AuthApi, chat::ChatApi, chatkit::ChatKitApi, health::HealthApi, sessions::SessionsApi, tasks::TasksApi,
};
use crate::error::ApiError;
use crate::store::Store;

/// Maps a store failure: unreachable is 503, anything else an opaque 500.
pub(crate) fn store_error(error: &StoreError) -> ApiError {
    match error {
        StoreError::Unavailable(cause) => {
            tracing::warn!(error = %error::chain(cause.as_ref()), "database unavailable");
            ApiError::unavailable()
        }
        StoreError::Unexpected(_) => ApiError::internal(error),
    }
}

/// The services every API area is built from.
struct Services {
    auth: Arc<AuthService>,
    tasks: Arc<TaskService>,
    assistant: Arc<AssistantService>,
    /// The model séance spirits speak through (offline unless a provider is configured).
    #[allow(dead_code)]
    spirit: Arc<dyn LanguageModel>,
    rate_limiter: Arc<dyn RateLimiter>,
    sessions: Arc<SessionService>,
    /// Shared by the documented `/health` and the lean route that serves it.
    probe: Arc<DatabaseProbe>,
}

/// The configured provider for `role`, or the offline stand-in.
fn language_model(settings: &Settings, offline: Arc<dyn LanguageModel>) -> anyhow::Result<Arc<dyn LanguageModel>> {
    let Some(llm) = &settings.llm else { return Ok(offline) };
    let config = OpenAiConfig {
        base_url: llm.base_url.clone(),
        api_key: llm.api_key.clone(),
        model: llm.model.clone(),
        timeout: llm.timeout,
        max_tokens: settings.assistant_limits.max_tokens,
    };
    Ok(Arc::new(OpenAiLanguageModel::new(config).context("LLM_BASE_URL")?))
}

fn services(settings: &Settings, store: Store) -> anyhow::Result<Services> {
    let key = match settings.token_secret {
        Some(key) => key,
        None => {
            tracing::warn!("TOKEN_SECRET is not set: generated a random key; tokens will not survive a restart");
            let mut key = [0_u8; 32];
            key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            key
        }
    };
    let tokens =
        PasetoTokenService::new(&key, settings.access_token_ttl).context("TOKEN_SECRET is not a usable key")?;
    let clock = Arc::new(SystemClock);
    let auth = AuthService::new(
        store.users(),
        Arc::new(Argon2PasswordHasher::new(HasherConfig::default())),
        Arc::new(tokens),
        clock.clone(),
    );
    let tasks = Arc::new(TaskService::new(store.tasks(), clock.clone()));
    let model = language_model(settings, Arc::new(OfflineAssistant::new()))?;
    let limits = settings.assistant_limits.reply_limits();
    let assistant = AssistantService::new(
        store.conversations(),
        tasks.clone(),
        model,
        clock,
        limits,
        Arc::new(rooms::TokioSpawner),
    );
    let per_minute = std::num::NonZeroU32::new(settings.rate_limit_per_minute).context("RATE_LIMIT_PER_MINUTE")?;
    let spirit = language_model(settings, Arc::new(OfflineSpirit::new()))?;
    Ok(Services {
        sessions: rooms::session_service(&store, spirit.clone()),
        probe: Arc::new(DatabaseProbe::new(store.users())),
        spirit,
        auth: Arc::new(auth),
        tasks,
        assistant: Arc::new(assistant),
        rate_limiter: Arc::new(rate_limit::GovernorRateLimiter::new(per_minute)),
    })
}

fn health_api(services: &Services, settings: &Settings) -> HealthApi {
    HealthApi { probe: services.probe.clone(), environment: settings.environment }
}

type Apis = (HealthApi, AuthApi, TasksApi, ChatApi, ChatKitApi, SessionsApi);

fn openapi(services: &Services, settings: &Settings, draining: &shutdown::Draining) -> OpenApiService<Apis, ()> {
    let apis = (
        health_api(services, settings),
        AuthApi { auth: services.auth.clone() },
        TasksApi { tasks: services.tasks.clone() },
        ChatApi { assistant: services.assistant.clone() },
        ChatKitApi { assistant: services.assistant.clone(), draining: draining.clone() },
        SessionsApi { sessions: services.sessions.clone() },
    );
    OpenApiService::new(apis, "Parley API", env!("CARGO_PKG_VERSION")).description(
        "Users, tasks, an AI assistant with task tools, and séance rooms. See docs/ for the WebSocket protocol.",
    )
}

/// The generated OpenAPI document as YAML (what `parley openapi` prints).
///
/// # Errors
/// If the services cannot be assembled.
pub fn openapi_yaml() -> anyhow::Result<String> {
    let settings = Settings::from_lookup(|_| None)?;
    // A lazy pool that is never used: the document needs the API types, not a database.
    let store = Store::connect("postgres://localhost/unused", 1)?;
    let (_drain, draining) = shutdown::Drain::new();
    Ok(openapi(&services(&settings, store)?, &settings, &draining).spec_yaml())
}

/// Runs the migrations of the configured store.
///
/// # Errors
/// If the store cannot be reached or a migration fails.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let store = Store::connect(&settings.database_url, 2).context("DATABASE_URL")?;
    store.migrate().await.context("running migrations")
}

/// A bound, ready server.
pub struct Application {
    acceptor: NoDelay,
    port: u16,
    endpoint: Front,
    drain: shutdown::Drain,
    grace: Duration,
}

/// Sends `GET /health` to the lean probe, with only the request id, and
/// everything else to the API. A plain comparison: an outer `Route` nesting
/// the API would rewrite every API request's URI on the way in.
struct Front {
    probe: api::health::Probe,
    api: poem::endpoint::BoxEndpoint<'static>,
}

impl poem::Endpoint for Front {
    type Output = poem::Response;

    async fn call(&self, request: poem::Request) -> poem::Result<poem::Response> {
        if request.uri().path() == "/health" {
            middleware::request_id(&self.probe, request).await
        } else {
            self.api.call(request).await
        }
    }
}

/// Connects the store, runs migrations, wires the services and binds the port.
///
/// # Errors
/// If the store cannot be migrated or the address cannot be bound.
pub async fn build(settings: Settings) -> anyhow::Result<Application> {
    let (drain, draining) = shutdown::Drain::new();
    let store = Store::connect(&settings.database_url, settings.database_max_connections).context("DATABASE_URL")?;
    store.migrate().await.context("running database migrations")?;
    let services = services(&settings, store)?;
    let api = openapi(&services, &settings, &draining);
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
    let rooms = Arc::new(rooms::Rooms {
        sessions: services.sessions.clone(),
        auth: services.auth.clone(),
        join_timeout: rooms::JOIN_TIMEOUT,
        draining: draining.clone(),
    });
    let limiter = services.rate_limiter.clone();
    let endpoint = Route::new()
        .nest("/", api)
        .at("/api/v1/sessions/:id/ws", poem::get(rooms::upgrade).data(rooms))
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .nest("/docs", docs)
        .nest("/redoc", redoc)
        .around(move |next, request| middleware::limits(next, request, limiter.clone()))
        .data(services.auth.clone())
        // Inside CORS, so that error envelopes carry the CORS headers too.
        .catch_all_error(error::catch_all)
        .with(cors)
        .around(move |next, request| middleware::cross_origin(next, request, origins.clone()))
        .around(middleware::request_id);
    // Probes get `/health` without the API's middleware (CORS, limits, auth
    // data): none applies to it, and every layer costs (docs/performance.md).
    // The documented operation in `api` is the same handler on the same probe.
    let endpoint = Front { probe: api::health::Probe::new(&health_api(&services, &settings)), api: endpoint.boxed() };
    let address = format!("{}:{}", settings.host, settings.port);
    let acceptor = TcpListener::bind(&address).into_acceptor().await.with_context(|| format!("binding {address}"))?;
    let port = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().map(std::net::SocketAddr::port))
        .context("the listener has no TCP address")?;
    Ok(Application { acceptor: NoDelay(acceptor), port, endpoint, drain, grace: settings.shutdown_grace })
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

    /// Serves until `signal` resolves, then shuts down as on SIGTERM: the
    /// draining signal is set and in-flight requests get the grace period.
    ///
    /// # Errors
    /// If the server fails.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let drain = self.drain;
        let signal = async move {
            signal.await;
            drain.start();
        };
        Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(self.endpoint, signal, Some(self.grace))
            .await
    }
}

/// A TCP acceptor that turns Nagle's algorithm off on every connection
/// (poem's `TcpAcceptor` leaves it on). Otherwise a small write that follows
/// another, such as the first `assistant.delta` after `message.created` on an
/// SSE stream, or a WebSocket frame after the last, waits for the client's
/// delayed ACK: 40 ms on Linux (docs/performance.md).
pub struct NoDelay(pub TcpAcceptor);

impl Acceptor for NoDelay {
    type Io = tokio::net::TcpStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.0.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (stream, local, remote, scheme) = self.0.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream, local, remote, scheme))
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
