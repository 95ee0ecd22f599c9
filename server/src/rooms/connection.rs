//! One WebSocket connection to a séance room: the join handshake, then the
//! client's frames and the room's events until someone leaves.
//!
//! One task serves the connection and writes to the socket itself, as a bare
//! relay would: a room event costs one task wake-up per member. Nothing in
//! the room waits for this client. The room buffers events for its slowest
//! member, and a client that falls further behind, or whose socket takes
//! longer than [`SEND_TIMEOUT`] to take a frame, is disconnected.

use std::convert::Infallible;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use parley_application::{JoinError, JoinedRoom};
use parley_kernel::{SessionId, UserId};
use parley_sessions::{ConnectionId, Participant, RoomDelivery, RoomEvent, RoomMessageText, SessionError};
use parley_users::DisplayName;
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::rooms::Rooms;
use crate::rooms::frames::{self, ClientFrame, JoinData, SendMessageData};
use crate::rooms::limits::TokenBucket;

/// The largest text frame processed; bigger ones get an error event.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// How long one write to the client may take before the client is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the closing frame may take to go out.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// `send_message` frames: 5 a second, bursts of 10.
const MESSAGE_RATE: (u32, u32) = (5, 10);
/// Every frame: 20 a second, bursts of 40.
const FRAME_RATE: (u32, u32) = (20, 40);

pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_NOT_FOUND: u16 = 4004;
pub const CLOSE_JOIN_TIMEOUT: u16 = 4008;
pub const CLOSE_FULL: u16 = 4009;
pub const CLOSE_CLOSED: u16 = 4010;

/// The connection is over: closed, or the client is gone or too slow.
struct Ended;

/// Serves one upgraded connection to the room named by `raw_id`.
pub async fn serve(
    rooms: std::sync::Arc<Rooms>,
    socket: WebSocketStream,
    raw_id: String,
    header_token: Option<String>,
) {
    let mut connection = Connection { rooms: &rooms, socket };
    connection.run(&raw_id, header_token).await;
}

struct Connection<'a> {
    rooms: &'a Rooms,
    socket: WebSocketStream,
}

/// What a client frame was, once read.
enum Incoming {
    Frame(ClientFrame),
    /// Answered already (an error event) or nothing to do (a control frame).
    Handled,
    Gone,
}

/// What woke a joined connection.
enum Wake {
    Client(Option<Result<Message, std::io::Error>>),
    Room(Option<RoomDelivery>),
}

impl Connection<'_> {
    /// Writes a frame; a client that cannot take it in time is given up.
    async fn send(&mut self, text: String) -> Result<(), Ended> {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::Text(text))).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Ended),
        }
    }

    async fn error(&mut self, code: &str, message: &str) -> Result<(), Ended> {
        self.send(frames::error(code, message)).await
    }

    /// Sends a close frame; the connection is over either way.
    async fn close(&mut self, code: u16, reason: &str) -> Ended {
        let frame = Message::Close(Some((CloseCode::from(code), reason.to_owned())));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.send(frame)).await;
        Ended
    }

    /// An error event, then a close frame with `close_code`.
    async fn refuse(&mut self, close_code: u16, code: &str, message: &str) -> Ended {
        match self.error(code, message).await {
            Ok(()) => self.close(close_code, code).await,
            Err(ended) => ended,
        }
    }

    async fn run(&mut self, raw_id: &str, header_token: Option<String>) {
        let Ok(session) = raw_id.parse::<SessionId>() else {
            let message = format!("Session with id '{raw_id}' not found");
            self.refuse(CLOSE_NOT_FOUND, "SESSION_NOT_FOUND", &message).await;
            return;
        };
        let connection = ConnectionId::new();
        let Ok(joined) = self.join(session, raw_id, header_token, connection).await else { return };
        let user = joined.participant.user_id;
        tracing::debug!(session = %session, user = %user, "joined a séance room");
        let Err(Ended) = self.live(session, joined).await;
        self.rooms.sessions.leave(session, user, connection).await;
        tracing::debug!(session = %session, user = %user, "left a séance room");
    }

    /// Reads the next frame as JSON, answering bad frames with an error event.
    async fn read(&mut self, frame: Option<Result<Message, std::io::Error>>) -> Result<Incoming, Ended> {
        let text = match frame {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(Incoming::Gone),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(Incoming::Handled),
            Some(Ok(Message::Binary(_))) => {
                self.error("INVALID_FRAME", "Frames must be JSON text frames").await?;
                return Ok(Incoming::Handled);
            }
            Some(Ok(Message::Text(text))) => text,
        };
        if text.len() > MAX_FRAME_BYTES {
            self.error("FRAME_TOO_LARGE", "Frames must be at most 16 KiB").await?;
            return Ok(Incoming::Handled);
        }
        match serde_json::from_str::<ClientFrame>(&text) {
            Ok(frame) => Ok(Incoming::Frame(frame)),
            Err(_) => {
                self.error("INVALID_JSON", "Frames must be JSON objects {\"event\", \"data\"}").await?;
                Ok(Incoming::Handled)
            }
        }
    }

    /// Waits for a valid `join` frame within the join timeout.
    async fn join(
        &mut self,
        session: SessionId,
        raw_id: &str,
        header_token: Option<String>,
        connection: ConnectionId,
    ) -> Result<JoinedRoom, Ended> {
        let deadline = Instant::now() + self.rooms.join_timeout;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.socket.next()).await else {
                return Err(self.refuse(CLOSE_JOIN_TIMEOUT, "JOIN_TIMEOUT", "No join frame arrived in time").await);
            };
            let frame = match self.read(next).await? {
                Incoming::Frame(frame) => frame,
                Incoming::Handled => continue,
                Incoming::Gone => return Err(Ended),
            };
            if frame.event != "join" {
                self.error("JOIN_REQUIRED", "The first frame must be a join").await?;
                continue;
            }
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
            let Ok(user) = self.rooms.auth.authenticate(&token) else {
                let message = "The access token is invalid or expired";
                return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", message).await);
            };
            let name = match data.name.as_deref().map(DisplayName::parse) {
                None => None,
                Some(Ok(name)) => Some(name),
                Some(Err(error)) => {
                    self.error("VALIDATION_ERROR", &format!("name {error}")).await?;
                    continue;
                }
            };
            return match self.rooms.sessions.join(session, user, name, connection).await {
                Ok(joined) => Ok(joined),
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
    /// until one side ends it.
    async fn live(&mut self, session: SessionId, joined: JoinedRoom) -> Result<Infallible, Ended> {
        let JoinedRoom { session: view, participant, participants, history, mut events } = joined;
        self.send(frames::joined(view, &participants, history)).await?;
        let mut messages = TokenBucket::new(MESSAGE_RATE.0, MESSAGE_RATE.1);
        let mut frames_in = TokenBucket::new(FRAME_RATE.0, FRAME_RATE.1);
        loop {
            // Both reads are cancel-safe; a frame half read stays buffered in the socket.
            let wake = tokio::select! {
                incoming = self.socket.next() => Wake::Client(incoming),
                delivery = events.next() => Wake::Room(delivery),
            };
            match wake {
                Wake::Client(incoming) => match self.read(incoming).await? {
                    Incoming::Frame(frame) => {
                        self.handle(session, &participant, frame, &mut messages, &mut frames_in).await?;
                    }
                    Incoming::Handled => {}
                    Incoming::Gone => return Err(Ended),
                },
                Wake::Room(None) => return Err(self.close(1011, "room unavailable").await),
                // Further behind than the room buffers: it reconnects and gets the history.
                Wake::Room(Some(RoomDelivery::Lagged)) => return Err(Ended),
                Wake::Room(Some(RoomDelivery::Event(shared))) => match shared.event() {
                    RoomEvent::SessionClosed => {
                        self.send(frames::event(&RoomEvent::SessionClosed)).await?;
                        return Err(self.close(1000, "session closed").await);
                    }
                    event if event.not_for() == Some(participant.user_id) => {}
                    _ => self.send(shared.rendered(frames::event).to_owned()).await?,
                },
            }
        }
    }

    /// Acts on one client frame; `Err` ends the connection.
    async fn handle(
        &mut self,
        session: SessionId,
        me: &Participant,
        frame: ClientFrame,
        messages: &mut TokenBucket,
        frames_in: &mut TokenBucket,
    ) -> Result<(), Ended> {
        let limited = !frames_in.try_take() || (frame.event == "send_message" && !messages.try_take());
        if limited {
            return self.error("RATE_LIMITED", "Too many frames; slow down").await;
        }
        match frame.event.as_str() {
            "send_message" => self.say(session, me, frame.data).await,
            "typing" => {
                if let Err(error) = self.rooms.sessions.typing(session, me).await {
                    tracing::warn!(error = %error, "could not relay typing");
                }
                Ok(())
            }
            "ping" => self.send(frames::frame("pong", json!({}))).await,
            "leave" => Err(self.close(1000, "left").await),
            "join" => self.error("ALREADY_JOINED", "This connection has already joined").await,
            _ => self.error("UNKNOWN_EVENT", "Unknown event; expected send_message, typing, ping or leave").await,
        }
    }

    async fn say(&mut self, session: SessionId, me: &Participant, data: Value) -> Result<(), Ended> {
        let Ok(SendMessageData { message }) = serde_json::from_value(data) else {
            return self.error("VALIDATION_ERROR", "send_message data must be {\"message\": string}").await;
        };
        let text = match RoomMessageText::parse(&message) {
            Ok(text) => text,
            Err(error) => return self.error(error.code(), &error.to_string()).await,
        };
        // `message_received` reaches this client through the room, like everyone else.
        match self.rooms.sessions.say(session, me, text).await {
            Ok(_) => Ok(()),
            Err(SessionError::Closed) => self.error("SESSION_CLOSED", "The session is closed").await,
            Err(SessionError::NotFound | SessionError::Forbidden) => {
                self.error("SESSION_NOT_FOUND", "The session no longer exists").await
            }
            Err(SessionError::Store(error)) => {
                tracing::warn!(error = %error, "a séance message could not be stored");
                self.error("DATABASE_UNAVAILABLE", "The message could not be stored; try again shortly").await
            }
        }
    }
}
