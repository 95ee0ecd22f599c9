//! One WebSocket connection to a séance room: the join handshake, then the
//! client's frames and the room's events until someone leaves.
//!
//! Writes go through a bounded queue drained by a writer task, so nothing in
//! the room ever waits for this client: when the queue is full, or a write
//! stalls, the client is disconnected.

use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use parley_application::{JoinError, JoinedRoom};
use parley_kernel::{SessionId, UserId};
use parley_sessions::{ConnectionId, Participant, RoomDelivery, RoomEvent, RoomMessageText, SessionError};
use parley_users::DisplayName;
use poem::web::websocket::{CloseCode, Message, WebSocketStream};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::rooms::Rooms;
use crate::rooms::frames::{self, ClientFrame, JoinData, SendMessageData};
use crate::rooms::limits::TokenBucket;

/// Frames waiting for a client; a client this far behind is disconnected.
pub const OUTGOING_QUEUE: usize = 64;
/// The largest text frame processed; bigger ones get an error event.
pub const MAX_FRAME_BYTES: usize = 16 * 1024;
/// How long one write to the client may take before it is given up.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the writer may take to flush the last frames after the room ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// `send_message` frames: 5 a second, bursts of 10.
const MESSAGE_RATE: (u32, u32) = (5, 10);
/// Every frame: 20 a second, bursts of 40.
const FRAME_RATE: (u32, u32) = (20, 40);

pub const CLOSE_UNAUTHORIZED: u16 = 4001;
pub const CLOSE_NOT_FOUND: u16 = 4004;
pub const CLOSE_JOIN_TIMEOUT: u16 = 4008;
pub const CLOSE_FULL: u16 = 4009;
pub const CLOSE_CLOSED: u16 = 4010;

type Sink = SplitSink<WebSocketStream, Message>;
type Stream = SplitStream<WebSocketStream>;

enum Outgoing {
    Text(String),
    Close(u16, &'static str),
}

/// Why a connection ended.
enum Exit {
    /// A close frame is queued, or the client went away.
    Done,
    /// The client could not keep up: drop it without waiting.
    Slow,
}

/// Serves one upgraded connection to the room named by `raw_id`.
pub async fn serve(
    rooms: std::sync::Arc<Rooms>,
    socket: WebSocketStream,
    raw_id: String,
    header_token: Option<String>,
) {
    let (sink, mut stream) = socket.split();
    let (out, queue) = mpsc::channel(OUTGOING_QUEUE);
    let mut writer = tokio::spawn(write(sink, queue));
    let exit = {
        let mut connection = Connection { rooms: &rooms, out, stream: &mut stream };
        connection.run(&raw_id, header_token).await
    };
    match exit {
        Exit::Slow => writer.abort(),
        Exit::Done => {
            if tokio::time::timeout(DRAIN_TIMEOUT, &mut writer).await.is_err() {
                writer.abort();
            }
        }
    }
}

/// Drains the queue into the socket; stops at a close frame, a failed write
/// or one that stalls.
async fn write(mut sink: Sink, mut queue: mpsc::Receiver<Outgoing>) {
    while let Some(item) = queue.recv().await {
        let (message, last) = match item {
            Outgoing::Text(text) => (Message::Text(text), false),
            Outgoing::Close(code, reason) => (Message::Close(Some((CloseCode::from(code), reason.to_owned()))), true),
        };
        match tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) if !last => {}
            _ => return,
        }
    }
}

struct Connection<'a> {
    rooms: &'a Rooms,
    out: mpsc::Sender<Outgoing>,
    stream: &'a mut Stream,
}

/// What a client frame was, once read.
enum Incoming {
    Frame(ClientFrame),
    /// Answered already (an error event) or nothing to do (a control frame).
    Handled,
    Gone,
}

impl Connection<'_> {
    /// Queues a frame; a full queue means the client cannot keep up.
    fn send(&self, text: String) -> Result<(), Exit> {
        match self.out.try_send(Outgoing::Text(text)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Exit::Slow),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Exit::Done),
        }
    }

    fn error(&self, code: &str, message: &str) -> Result<(), Exit> {
        self.send(frames::error(code, message))
    }

    fn close(&self, code: u16, reason: &'static str) -> Exit {
        match self.out.try_send(Outgoing::Close(code, reason)) {
            Err(mpsc::error::TrySendError::Full(_)) => Exit::Slow,
            _ => Exit::Done,
        }
    }

    /// An error event, then a close frame with `close_code`.
    fn refuse(&self, close_code: u16, code: &'static str, message: &str) -> Exit {
        match self.error(code, message) {
            Ok(()) => self.close(close_code, code),
            Err(exit) => exit,
        }
    }

    async fn run(&mut self, raw_id: &str, header_token: Option<String>) -> Exit {
        let Ok(session) = raw_id.parse::<SessionId>() else {
            return self.refuse(CLOSE_NOT_FOUND, "SESSION_NOT_FOUND", &format!("Session with id '{raw_id}' not found"));
        };
        let connection = ConnectionId::new();
        let joined = match self.join(session, raw_id, header_token, connection).await {
            Ok(joined) => joined,
            Err(exit) => return exit,
        };
        let user = joined.participant.user_id;
        tracing::debug!(session = %session, user = %user, "joined a séance room");
        let exit = self.live(session, joined).await;
        self.rooms.sessions.leave(session, user, connection).await;
        tracing::debug!(session = %session, user = %user, "left a séance room");
        exit
    }

    /// Reads the next frame as JSON, answering bad frames with an error event.
    async fn read(&mut self, frame: Option<Result<Message, std::io::Error>>) -> Result<Incoming, Exit> {
        let text = match frame {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return Ok(Incoming::Gone),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Ok(Incoming::Handled),
            Some(Ok(Message::Binary(_))) => {
                self.error("INVALID_FRAME", "Frames must be JSON text frames")?;
                return Ok(Incoming::Handled);
            }
            Some(Ok(Message::Text(text))) => text,
        };
        if text.len() > MAX_FRAME_BYTES {
            self.error("FRAME_TOO_LARGE", "Frames must be at most 16 KiB")?;
            return Ok(Incoming::Handled);
        }
        match serde_json::from_str::<ClientFrame>(&text) {
            Ok(frame) => Ok(Incoming::Frame(frame)),
            Err(_) => {
                self.error("INVALID_JSON", "Frames must be JSON objects {\"event\", \"data\"}")?;
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
    ) -> Result<JoinedRoom, Exit> {
        let deadline = Instant::now() + self.rooms.join_timeout;
        loop {
            let Ok(next) = tokio::time::timeout_at(deadline, self.stream.next()).await else {
                return Err(self.refuse(CLOSE_JOIN_TIMEOUT, "JOIN_TIMEOUT", "No join frame arrived in time"));
            };
            let frame = match self.read(next).await? {
                Incoming::Frame(frame) => frame,
                Incoming::Handled => continue,
                Incoming::Gone => return Err(Exit::Done),
            };
            if frame.event != "join" {
                self.error("JOIN_REQUIRED", "The first frame must be a join")?;
                continue;
            }
            let data: JoinData = if frame.data.is_null() {
                JoinData::default()
            } else if let Ok(data) = serde_json::from_value(frame.data) {
                data
            } else {
                self.error("VALIDATION_ERROR", "join data must be {\"token\"?, \"name\"?} with string values")?;
                continue;
            };
            let Some(token) = data.token.filter(|t| !t.is_empty()).or_else(|| header_token.clone()) else {
                return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", "A valid bearer token is required"));
            };
            let Ok(user) = self.rooms.auth.authenticate(&token) else {
                return Err(self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", "The access token is invalid or expired"));
            };
            let name = match data.name.as_deref().map(DisplayName::parse) {
                None => None,
                Some(Ok(name)) => Some(name),
                Some(Err(error)) => {
                    self.error("VALIDATION_ERROR", &format!("name {error}"))?;
                    continue;
                }
            };
            return match self.rooms.sessions.join(session, user, name, connection).await {
                Ok(joined) => Ok(joined),
                Err(error) => Err(self.refuse_join(error, raw_id, user)),
            };
        }
    }

    fn refuse_join(&self, error: JoinError, raw_id: &str, user: UserId) -> Exit {
        match error {
            JoinError::NotFound => {
                self.refuse(CLOSE_NOT_FOUND, "SESSION_NOT_FOUND", &format!("Session with id '{raw_id}' not found"))
            }
            JoinError::Closed => self.refuse(CLOSE_CLOSED, "SESSION_CLOSED", "The session is closed"),
            JoinError::Full => self.refuse(CLOSE_FULL, "SESSION_FULL", "The session is full"),
            JoinError::UnknownUser => {
                self.refuse(CLOSE_UNAUTHORIZED, "UNAUTHORIZED", "The token's user no longer exists")
            }
            JoinError::Store(error) => {
                tracing::warn!(error = %error, user = %user, "a séance join failed");
                self.refuse(1011, "DATABASE_UNAVAILABLE", "The room cannot be joined right now; try again shortly")
            }
        }
    }

    /// The joined connection: client frames one way, room events the other.
    async fn live(&mut self, session: SessionId, joined: JoinedRoom) -> Exit {
        let JoinedRoom { session: view, participant, participants, history, mut events } = joined;
        if let Err(exit) = self.send(frames::joined(view, &participants, history)) {
            return exit;
        }
        let mut messages = TokenBucket::new(MESSAGE_RATE.0, MESSAGE_RATE.1);
        let mut frames_in = TokenBucket::new(FRAME_RATE.0, FRAME_RATE.1);
        let out = self.out.clone();
        loop {
            let step = tokio::select! {
                incoming = self.stream.next() => match self.read(incoming).await {
                    Ok(Incoming::Frame(frame)) => {
                        self.handle(session, &participant, frame, &mut messages, &mut frames_in).await
                    }
                    Ok(Incoming::Handled) => Ok(()),
                    Ok(Incoming::Gone) => Err(Exit::Done),
                    Err(exit) => Err(exit),
                },
                delivery = events.next() => match delivery {
                    None => Err(self.close(1011, "room unavailable")),
                    Some(RoomDelivery::Lagged) => Err(Exit::Slow),
                    Some(RoomDelivery::Event(shared)) => match shared.event() {
                        RoomEvent::SessionClosed => {
                            Err(self.send(frames::event(&RoomEvent::SessionClosed)).map_or_else(|e| e, |()| self.close(1000, "session closed")))
                        }
                        event if event.not_for() == Some(participant.user_id) => Ok(()),
                        _ => self.send(shared.rendered(frames::event).to_owned()),
                    },
                },
                () = out.closed() => Err(Exit::Done),
            };
            if let Err(exit) = step {
                return exit;
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
    ) -> Result<(), Exit> {
        let limited = !frames_in.try_take() || (frame.event == "send_message" && !messages.try_take());
        if limited {
            return self.error("RATE_LIMITED", "Too many frames; slow down");
        }
        match frame.event.as_str() {
            "send_message" => self.say(session, me, frame.data).await,
            "typing" => {
                if let Err(error) = self.rooms.sessions.typing(session, me).await {
                    tracing::warn!(error = %error, "could not relay typing");
                }
                Ok(())
            }
            "ping" => self.send(frames::frame("pong", json!({}))),
            "leave" => Err(self.close(1000, "left")),
            "join" => self.error("ALREADY_JOINED", "This connection has already joined"),
            _ => self.error("UNKNOWN_EVENT", "Unknown event; expected send_message, typing, ping or leave"),
        }
    }

    async fn say(&mut self, session: SessionId, me: &Participant, data: Value) -> Result<(), Exit> {
        let Ok(SendMessageData { message }) = serde_json::from_value(data) else {
            return self.error("VALIDATION_ERROR", "send_message data must be {\"message\": string}");
        };
        let text = match RoomMessageText::parse(&message) {
            Ok(text) => text,
            Err(error) => return self.error(error.code(), &error.to_string()),
        };
        // `message_received` reaches this client through the room, like everyone else.
        match self.rooms.sessions.say(session, me, text).await {
            Ok(_) => Ok(()),
            Err(SessionError::Closed) => self.error("SESSION_CLOSED", "The session is closed"),
            Err(SessionError::NotFound | SessionError::Forbidden) => {
                self.error("SESSION_NOT_FOUND", "The session no longer exists")
            }
            Err(SessionError::Store(error)) => {
                tracing::warn!(error = %error, "a séance message could not be stored");
                self.error("DATABASE_UNAVAILABLE", "The message could not be stored; try again shortly")
            }
        }
    }
}
