//! Séance rooms over WebSocket: `GET /api/v1/sessions/:id/ws` (a plain poem
//! route beside the OpenAPI service), the in-process room broker, and the
//! runtime the spirit's replies run on. The protocol is in docs/websocket.md.

pub mod broker;
mod connection;
mod frames;
mod limits;

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use parley_application::{AuthService, RoomService, Spawner, Timer};
use poem::web::websocket::{WebSocket, WebSocketConfig};
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, handler};

pub use broker::LocalRoomBroker;

/// How long a new connection has to send its `join` frame.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Frames above this are refused by the WebSocket layer, before their payload
/// is read, and the connection closes with 1009; between 16 KiB and this, an
/// error event answers them.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How often a joined connection is pinged, and how long it may be silent.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

/// Connections one user may have open to one room.
pub const MAX_CONNECTIONS_PER_USER: usize = 10;

/// `send_message` frames of one user in one room, all their connections
/// together: 5 a second, bursts of 10.
const MESSAGE_RATE: (u32, u32) = (5, 10);

/// Each connection's read buffer. tungstenite's default is 128 KiB, which it
/// zero-fills before every read: 139 KiB resident per idle connection and a
/// fifth of the CPU of a busy room (docs/performance.md). Larger frames still
/// arrive, over several reads.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// The WebSocket endpoint's state: what every room connection needs.
pub struct RoomEndpoint {
    pub service: Arc<RoomService>,
    pub auth: Arc<AuthService>,
    pub join_timeout: Duration,
    /// How often a joined connection is pinged.
    pub ping_interval: Duration,
    /// How long a client may send nothing (not even a pong) before it is closed.
    pub idle_timeout: Duration,
    /// Each user's connections and message budget in each room.
    pub places: Arc<limits::Places>,
    /// Set when the server starts draining: connections say so and close with 1001.
    pub draining: crate::shutdown::Draining,
}

impl RoomEndpoint {
    /// The endpoint with the protocol's timings and limits.
    #[must_use]
    pub fn new(service: Arc<RoomService>, auth: Arc<AuthService>, draining: crate::shutdown::Draining) -> Self {
        Self {
            service,
            auth,
            join_timeout: JOIN_TIMEOUT,
            ping_interval: PING_INTERVAL,
            idle_timeout: IDLE_TIMEOUT,
            places: Arc::new(limits::Places::new(MAX_CONNECTIONS_PER_USER, MESSAGE_RATE)),
            draining,
        }
    }

    /// Pings every `ping_interval`; closes a connection silent for `idle_timeout`.
    #[must_use]
    pub fn keepalive(mut self, ping_interval: Duration, idle_timeout: Duration) -> Self {
        self.ping_interval = ping_interval;
        self.idle_timeout = idle_timeout;
        self
    }

    /// Allows `connections` connections per user per room (the contract's 10 by default).
    #[must_use]
    pub fn connections_per_user(mut self, connections: usize) -> Self {
        self.places = Arc::new(limits::Places::new(connections, MESSAGE_RATE));
        self
    }
}

/// Runs background work (the spirit's replies) and its waits on the tokio runtime.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioSpawner;

impl Spawner for TokioSpawner {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        tokio::spawn(task);
    }
}

impl Timer for TokioSpawner {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Upgrades any well-formed path; every refusal happens after the upgrade,
/// as an error event and a close code.
#[handler]
pub fn upgrade(
    Path(id): Path<String>,
    ws: WebSocket,
    request: &Request,
    endpoint: Data<&Arc<RoomEndpoint>>,
) -> impl IntoResponse {
    let header_token = crate::security::bearer_token(request.headers()).map(str::to_owned);
    let endpoint = Arc::clone(endpoint.0);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES));
    ws.config(config).on_upgrade(move |socket| connection::serve(endpoint, socket, id, header_token))
}
