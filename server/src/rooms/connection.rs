//! One WebSocket connection to a séance room: the join handshake, then the
//! client's frames and the room's events until someone leaves.
//!
//! One task serves the connection and writes to the socket itself, as a bare
//! relay would: a room event costs one task wake-up per member. Nothing in
//! the room waits for this client. The room buffers events for its slowest
//! member, and a client that falls further behind, or whose socket takes
//! longer than [`SEND_TIMEOUT`] to take a frame, is disconnected.
//!
//! Besides the room, a connection ends when its token expires (unless a
//! `reauth` replaced it), when the client is silent too long, when it keeps
//! flooding, and when the server drains.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley_application::{JoinError, JoinedRoom};
use parley_kernel::{RoomId, Timestamp, UserId};
use parley_rooms::{ConnectionId, Participant, RoomDelivery, RoomError, RoomEvent, RoomMessageText};
use parley_users::DisplayName;
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::rooms::RoomEndpoint;
use crate::rooms::frames::{self, ClientFrame, JoinData, ReauthData, SendMessageData};
use crate::rooms::limits::{PlaceGuard, TokenBucket};

/// The largest text frame processed; bigger ones get an error event.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// How long one write to the client may take before the client is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the closing frame may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Every frame, whatever it holds: 20 a second, bursts of 40.
const FRAME_RATE: (u32, u32) = (20, 40);
/// Frames refused by [`FRAME_RATE`] a client may send, refilled at 1 a
/// second: past them the client is closed with 1008.
const STRIKES: (u32, u32) = (1, 20);

pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_TOO_BIG: u16 = 1009;
pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_NOT_FOUND: u16 = 4004;
pub const CLOSE_JOIN_TIMEOUT: u16 = 4008;
pub const CLOSE_FULL: u16 = 4009;
pub const CLOSE_CLOSED: u16 = 4010;
pub const CLOSE_TOO_MANY: u16 = 4029;

/// The connection is over: closed, or the client is gone or too slow.
struct Ended;

/// Serves one upgraded connection to the room named by `raw_id`.
pub async fn serve(
    endpoint: std::sync::Arc<RoomEndpoint>,
    socket: WebSocketStream,
    raw_id: String,
    header_token: Option<String>,
) {
    let mut draining = endpoint.draining.clone();
    let draining = draining.started();
    tokio::pin!(draining);
    let mut connection = Connection {
        endpoint: &endpoint,
        socket,
        draining,
        frames_in: TokenBucket::new(FRAME_RATE.0, FRAME_RATE.1),
        strikes: TokenBucket::new(STRIKES.0, STRIKES.1),
        last_seen: Instant::now(),
    };
    metrics::gauge!("websocket_connections").increment(1.0);
    connection.run(&raw_id, header_token).await;
    metrics::gauge!("websocket_connections").decrement(1.0);
}

struct Connection<'a, D> {
    endpoint: &'a RoomEndpoint,
    socket: WebSocketStream,
    /// Resolves when the server starts draining.
    draining: std::pin::Pin<&'a mut D>,
    frames_in: TokenBucket,
    strikes: TokenBucket,
    /// When the client last sent anything, a pong included.
    last_seen: Instant,
}

/// What a client frame was, once read.
enum Incoming {
    Frame(ClientFrame),
    /// Not a frame to act on: a control frame, or one refused by flood
    /// control (answered already).
    Handled,
    /// Not a JSON frame of the protocol: `code` and `message` say why.
    Bad(&'static str, &'static str),
    Gone,
}

/// What woke a joined connection.
enum Wake {
    Client(Option<Result<Message, std::io::Error>>),
    Room(Option<RoomDelivery>),
    Keepalive,
    Expired,
    Draining,
}

/// A joined connection's own state.
struct Joined {
    room_id: RoomId,
    participant: Participant,
    place: PlaceGuard,
    expires_at: Instant,
}

/// The instant of `at` on the monotonic clock (now, if it is past).
fn instant_of(at: Timestamp) -> Instant {
    Instant::now() + (at - chrono::Utc::now()).to_std().unwrap_or_default()
}

/// tungstenite refuses a frame over its size limit with a capacity error,
/// which poem hands on as an `Other` I/O error with tungstenite's text.
fn is_too_large(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::Other && error.to_string().starts_with("Space limit exceeded")
}

impl<D: Future<Output = ()>> Connection<'_, D> {
    /// Writes a frame; a client that cannot take it in time is given up.
    async fn send(&mut self, message: Message) -> Result<(), Ended> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Ended),
        }
    }

    async fn send_text(&mut self, text: String) -> Result<(), Ended> {
        self.send(Message::Text(text)).await
    }

    async fn error(&mut self, code: &str, message: &str) -> Result<(), Ended> {
        self.send_text(frames::error(code, message)).await
    }

    /// Sends a close frame, then reads until the client's close (for at
    /// most [`CLOSE_TIMEOUT`] in all); the connection is over either way.
    ///
    /// Dropping the socket while the client's frames are still unread would
    /// make the kernel reset the connection, and a reset can destroy our
    /// close frame before the client reads it.
    async fn close(&mut self, code: u16, reason: &str) -> Ended {
        let frame = Message::Close(Some((CloseCode::from(code), reason.to_owned())));
        let socket = &mut self.socket;
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async move {
            if socket.send(frame).await.is_ok() {
                while let Some(Ok(message)) = socket.next().await {
                    if let Message::Close(_) = message {
                        break;
                    }
                }
            }
        })
        .await;
        Ended
    }

    /// An error event, then a close frame with `close_code`.
    async fn refuse(&mut self, close_code: u16, code: &str, message: &str) -> Ended {
        match self.error(code, message).await {
            Ok(()) => self.close(close_code, code).await,
            Err(ended) => ended,
        }
    }

    async fn shutting_down(&mut self) -> Ended {
        self.refuse(CLOSE_GOING_AWAY, "SERVER_SHUTTING_DOWN", "The server is shutting down; reconnect shortly").await
    }

    async fn run(&mut self, raw_id: &str, header_token: Option<String>) {
        let Ok(room_id) = raw_id.parse::<RoomId>() else {
            let message = format!("Session with id '{raw_id}' not found");
            self.refuse(CLOSE_NOT_FOUND, "SESSION_NOT_FOUND", &message).await;
            return;
        };
        let connection = ConnectionId::new();
        let Ok((joined, room)) = self.join(room_id, raw_id, header_token, connection).await else { return };
        let user = joined.participant.user_id;
        tracing::debug!(room_id = %room_id, user = %user, "joined a séance room");
        let Err(Ended) = self.live(joined, room).await;
        self.endpoint.service.leave(room_id, user, connection).await;
        tracing::debug!(room_id = %room_id, user = %user, "left a séance room");
    }

    /// Reads the next frame: every frame counts as life and spends the flood
    /// budget; a client that keeps flooding is closed.
    async fn read(&mut self, frame: Option<Result<Message, std::io::Error>>) -> Result<Incoming, Ended> {
        let message = match frame {
            None | Some(Ok(Message::Close(_))) => return Ok(Incoming::Gone),
            Some(Err(error)) if is_too_large(&error) => {
                return Err(self.close(CLOSE_TOO_BIG, "frames must be at most 64 KiB").await);
            }
            Some(Err(_)) => return Ok(Incoming::Gone),
            Some(Ok(message)) => message,
        };
        self.last_seen = Instant::now();
        if !self.frames_in.try_take() {
            if !self.strikes.try_take() {
                return Err(self
                    .refuse(CLOSE_POLICY, "RATE_LIMITED", "Too many frames; the connection is closed")
                    .await);
            }
            if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
                self.error("RATE_LIMITED", "Too many frames; slow down").await?;
            }
            return Ok(Incoming::Handled);
        }
        let text = match message {
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => return Ok(Incoming::Handled),
            Message::Binary(_) => return Ok(Incoming::Bad("INVALID_FRAME", "Frames must be JSON text frames")),
            Message::Text(text) => text,
        };
        if text.len() > MAX_FRAME_BYTES {
            return Ok(Incoming::Bad("FRAME_TOO_LARGE", "Frames must be at most 16 KiB"));
        }
        Ok(serde_json::from_str::<ClientFrame>(&text).map_or(
            Incoming::Bad("INVALID_JSON", "Frames must be JSON objects {\"event\", \"data\"}"),
            Incoming::Frame,
        ))
    }

    /// Waits for a valid `join` frame within the join timeout; any other
    /// frame first is refused with 4001.
    async fn join(
        &mut self,
        room_id: RoomId,
        raw_id: &str,
        header_token: Option<String>,
        connection: ConnectionId,
    ) -> Result<(Joined, JoinedRoom), Ended> {
        let deadline = Instant::now() + self.endpoint.join_timeout;
        loop {
            let next = tokio::select! {
                next = tokio::time::timeout_at(deadline, self.socket.next()) => next,
                () = &mut self.draining => return Err(self.shutting_down().await),
            };
            let Ok(next) = next else {
                return Err(self.refuse(CLOSE_JOIN_TIMEOUT, "JOIN_TIMEOUT", "No join frame arrived in time").await);
            };
            let frame = match self.read(next).await? {
                Incoming::Frame(frame) if frame.event == "join" => frame,
                Incoming::Handled => continue,
                Incoming::Gone => return Err(Ended),
                Incoming::Frame(_) | Incoming::Bad(..) => {
                    let message = "The first frame must be a join with a valid token";
                    return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", message).await);
                }
            };
            let data: JoinData = if frame.data.is_null() {
                JoinData::default()
            } else if let Ok(data) = serde_json::from_value(frame.data) {
                data
            } else {
                self.error("VALIDATION_ERROR", "join data must be {\"token\"?, \"name\"?} with string values").await?;
                continue;
            };
            let Some(token) = data.token.filter(|t| !t.is_empty()).or_else(|| header_token.clone()) else {
                return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", "A valid bearer token is required").await);
            };
            let Ok(claims) = self.endpoint.auth.authenticate_until(&token) else {
                let message = "The access token is invalid or expired";
                return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", message).await);
            };
            let user = claims.user;
            if self.endpoint.auth.caller(&token).await.is_err() {
                let message = "The access token's user no longer exists";
                return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", message).await);
            }
            let name = match data.name.as_deref().map(DisplayName::parse) {
                None => None,
                Some(Ok(name)) => Some(name),
                Some(Err(error)) => {
                    self.error("VALIDATION_ERROR", &format!("name {error}")).await?;
                    continue;
                }
            };
            let Some(place) = self.endpoint.places.take(room_id, user) else {
                let message = "This user has too many connections to this session";
                return Err(self.refuse(CLOSE_TOO_MANY, "TOO_MANY_CONNECTIONS", message).await);
            };
            return match self.endpoint.service.join(room_id, user, name, connection).await {
                Ok(room) => {
                    let joined = Joined {
                        room_id,
                        participant: room.participant.clone(),
                        place,
                        expires_at: instant_of(claims.expires_at),
                    };
                    Ok((joined, room))
                }
                Err(error) => Err(self.refuse_join(error, raw_id, user).await),
            };
        }
    }

    async fn refuse_join(&mut self, error: JoinError, raw_id: &str, user: UserId) -> Ended {
        match error {
            JoinError::NotFound => {
                let message = format!("Session with id '{raw_id}' not found");
                self.refuse(CLOSE_NOT_FOUND, "SESSION_NOT_FOUND", &message).await
            }
            JoinError::Closed => self.refuse(CLOSE_CLOSED, "SESSION_CLOSED", "The session is closed").await,
            JoinError::Full => self.refuse(CLOSE_FULL, "SESSION_FULL", "The session is full").await,
            JoinError::UnknownUser => {
                self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", "The token's user no longer exists").await
            }
            JoinError::Store(error) => {
                tracing::warn!(error = %error, user = %user, "a séance join failed");
                let message = "The room cannot be joined right now; try again shortly";
                self.refuse(1011, "DATABASE_UNAVAILABLE", message).await
            }
        }
    }

    /// The joined connection: client frames one way, room events the other,
    /// until one side ends it, the token expires, the client falls silent or
    /// the server drains.
    async fn live(&mut self, mut me: Joined, room: JoinedRoom) -> Result<Infallible, Ended> {
        let JoinedRoom { room: view, participants, history, mut events, .. } = room;
        self.send_text(frames::joined(view, &participants, history)).await?;
        let (ping_every, idle) = (self.endpoint.ping_interval, self.endpoint.idle_timeout);
        let mut next_ping = Instant::now() + ping_every;
        let keepalive = tokio::time::sleep_until(next_ping.min(self.last_seen + idle));
        let expiry = tokio::time::sleep_until(me.expires_at);
        tokio::pin!(keepalive, expiry);
        loop {
            // Every branch is cancel-safe; a frame half read stays buffered in the socket.
            let wake = tokio::select! {
                incoming = self.socket.next() => Wake::Client(incoming),
                delivery = events.next() => Wake::Room(delivery),
                () = &mut keepalive => Wake::Keepalive,
                () = &mut expiry => Wake::Expired,
                () = &mut self.draining => Wake::Draining,
            };
            match wake {
                Wake::Client(incoming) => match self.read(incoming).await? {
                    Incoming::Frame(frame) => {
                        self.handle(&mut me, frame).await?;
                        expiry.as_mut().reset(me.expires_at);
                    }
                    Incoming::Bad(code, message) => self.error(code, message).await?,
                    Incoming::Handled => {}
                    Incoming::Gone => return Err(Ended),
                },
                Wake::Keepalive => {
                    let now = Instant::now();
                    if now >= self.last_seen + idle {
                        return Err(self.close(CLOSE_GOING_AWAY, "idle").await);
                    }
                    if now >= next_ping {
                        self.send(Message::Ping(Vec::new())).await?;
                        next_ping = now + ping_every;
                    }
                    keepalive.as_mut().reset(next_ping.min(self.last_seen + idle));
                }
                Wake::Expired => {
                    let message = "The access token has expired; reconnect with a new one";
                    return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", message).await);
                }
                Wake::Draining => return Err(self.shutting_down().await),
                Wake::Room(None) => return Err(self.close(1011, "room unavailable").await),
                // Further behind than the room buffers: it reconnects and gets the history.
                Wake::Room(Some(RoomDelivery::Lagged)) => return Err(Ended),
                Wake::Room(Some(RoomDelivery::Event(shared))) => match shared.event() {
                    RoomEvent::Closed => {
                        self.send_text(frames::event(&RoomEvent::Closed)).await?;
                        return Err(self.close(1000, "session closed").await);
                    }
                    event if event.not_for() == Some(me.participant.user_id) => {}
                    _ => self.send_text(shared.rendered(frames::event).to_owned()).await?,
                },
            }
        }
    }

    /// Acts on one client frame; `Err` ends the connection.
    async fn handle(&mut self, me: &mut Joined, frame: ClientFrame) -> Result<(), Ended> {
        match frame.event.as_str() {
            "send_message" if !me.place.try_message() => {
                self.error("RATE_LIMITED", "Too many messages; slow down").await
            }
            "send_message" => self.say(me.room_id, &me.participant, frame.data).await,
            "typing" => {
                if let Err(error) = self.endpoint.service.typing(me.room_id, &me.participant).await {
                    tracing::warn!(error = %error, "could not relay typing");
                }
                Ok(())
            }
            "ping" => self.send_text(frames::frame("pong", json!({}))).await,
            "reauth" => self.reauth(me, frame.data).await,
            "leave" => Err(self.close(1000, "left").await),
            "join" => self.error("ALREADY_JOINED", "This connection has already joined").await,
            _ => {
                let message = "Unknown event; expected send_message, typing, ping, reauth or leave";
                self.error("UNKNOWN_EVENT", message).await
            }
        }
    }

    /// Replaces the connection's token with another valid one of the same user.
    async fn reauth(&mut self, me: &mut Joined, data: Value) -> Result<(), Ended> {
        let claims = serde_json::from_value(data)
            .ok()
            .and_then(|ReauthData { token }| self.endpoint.auth.authenticate_until(&token).ok())
            .filter(|claims| claims.user == me.participant.user_id);
        let Some(claims) = claims else {
            let message = "reauth needs a valid token of the connected user";
            return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", message).await);
        };
        me.expires_at = instant_of(claims.expires_at);
        Ok(())
    }

    async fn say(&mut self, room_id: RoomId, me: &Participant, data: Value) -> Result<(), Ended> {
        let Ok(SendMessageData { message }) = serde_json::from_value(data) else {
            return self.error("VALIDATION_ERROR", "send_message data must be {\"message\": string}").await;
        };
        let text = match RoomMessageText::parse(&message) {
            Ok(text) => text,
            Err(error) => return self.error(error.code(), &error.to_string()).await,
        };
        // `message_received` reaches this client through the room, like everyone else.
        match self.endpoint.service.say(room_id, me, text).await {
            Ok(_) => {
                metrics::counter!("room_messages_total").increment(1);
                Ok(())
            }
            Err(RoomError::Closed) => self.error("SESSION_CLOSED", "The session is closed").await,
            Err(RoomError::NotFound | RoomError::Forbidden) => {
                self.error("SESSION_NOT_FOUND", "The session no longer exists").await
            }
            Err(RoomError::Store(error)) => {
                tracing::warn!(error = %error, "a séance message could not be stored");
                self.error("DATABASE_UNAVAILABLE", "The message could not be stored; try again shortly").await
            }
        }
    }
}
