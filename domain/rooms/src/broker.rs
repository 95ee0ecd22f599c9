//! The room broker port: who is connected to a room, and the events
//! published to everyone in it. The in-process adapter serves one server
//! instance; a shared one (Redis) can serve several without any change above
//! this port.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use parley_kernel::{BoxError, RoomId, RoomMessageId, StoreError, UserId};

use crate::{Participant, RoomMessage, SpiritReply};

/// Identifies one live connection (one browser tab) to a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(uuid::Uuid);

impl ConnectionId {
    #[must_use]
    pub fn new() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl std::fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Default for ConnectionId {
    fn default() -> Self {
        Self::new()
    }
}

/// Something that happened in a room, delivered to every connection in it.
/// Connections do not receive the presence and typing events of their own user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    /// The user's first connection joined.
    UserJoined(Participant),
    /// The user's last connection left.
    UserLeft(Participant),
    UserTyping(Participant),
    /// A message was stored.
    MessageReceived(RoomMessage),
    /// The spirit is composing a reply.
    SpiritThinking,
    /// The spirit's reply was stored as `message`.
    SpiritResponse {
        message: RoomMessage,
        reply: SpiritReply,
        in_reply_to: Vec<RoomMessageId>,
    },
    /// The spirit's model failed; the messages it was answering stay stored.
    SpiritUnavailable,
    /// The host closed the room: every connection must end.
    Closed,
}

impl RoomEvent {
    /// Whose own connections skip this event, if anyone's.
    #[must_use]
    pub fn not_for(&self) -> Option<UserId> {
        match self {
            Self::UserJoined(p) | Self::UserLeft(p) | Self::UserTyping(p) => Some(p.user_id),
            _ => None,
        }
    }
}

/// A room event as its subscribers receive it: one value shared by all of
/// them, which also keeps the one rendering of it that they all send, so a
/// room of a thousand renders each event once, not a thousand times.
#[derive(Debug)]
pub struct SharedEvent {
    event: RoomEvent,
    rendered: OnceLock<String>,
}

impl SharedEvent {
    #[must_use]
    pub fn new(event: RoomEvent) -> Arc<Self> {
        Arc::new(Self { event, rendered: OnceLock::new() })
    }

    #[must_use]
    pub fn event(&self) -> &RoomEvent {
        &self.event
    }

    /// `render(event)`, computed by the first subscriber that asks and
    /// reused by the others.
    pub fn rendered(&self, render: impl FnOnce(&RoomEvent) -> String) -> &str {
        self.rendered.get_or_init(|| render(&self.event))
    }
}

impl PartialEq for SharedEvent {
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event
    }
}

impl Eq for SharedEvent {}

/// One item of a room subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomDelivery {
    Event(Arc<SharedEvent>),
    /// This subscriber fell too far behind and missed events; it should
    /// disconnect rather than go on with a gap.
    Lagged,
}

/// A connection's subscription to its room's events; it ends when the room
/// can no longer deliver.
pub type RoomEvents = BoxStream<'static, RoomDelivery>;

/// A connection admitted to a room.
pub struct Admission {
    /// Everyone in the room now, the joiner included, in joining order.
    pub participants: Vec<Participant>,
    /// Whether this is the user's first connection (so `UserJoined` was published).
    pub first_connection: bool,
    /// The room's events from the moment of admission.
    pub events: RoomEvents,
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission")
            .field("participants", &self.participants)
            .field("first_connection", &self.first_connection)
            .finish_non_exhaustive()
    }
}

/// Why a connection was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum JoinRefusal {
    /// `max_users` distinct users are already in the room.
    #[error("the session is full")]
    Full,
    /// The room was closed.
    #[error("the session is closed")]
    Closed,
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// The room broker itself failed.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// Its backend cannot be reached now (Redis down or not yet subscribed);
    /// the request may succeed later.
    #[error("the room broker is unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else: a bug, a malformed event in the backend.
    #[error("unexpected room broker failure")]
    Unexpected(#[source] BoxError),
}

impl BrokerError {
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        Self::Unavailable(cause.into())
    }

    pub fn unexpected(cause: impl Into<BoxError>) -> Self {
        Self::Unexpected(cause.into())
    }
}

/// The application reports a broker failure as the contract reports a store
/// failure: `Unavailable` is `DATABASE_UNAVAILABLE` (503, WebSocket 1011).
impl From<BrokerError> for StoreError {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::Unavailable(cause) => Self::Unavailable(cause),
            BrokerError::Unexpected(cause) => Self::Unexpected(cause),
        }
    }
}

/// The live side of séance rooms. Failures of the broker itself are
/// [`BrokerError`]s (`Unavailable` when its backend cannot be reached).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RoomBroker: Send + Sync {
    /// Admits `connection` of `participant` to the room, subscribed to its
    /// events. Capacity counts distinct users and is decided atomically with
    /// the admission, so concurrent joins never exceed `max_users`; a user
    /// already present is always admitted (another tab). On a user's first
    /// connection `UserJoined` is published, in order with other presence events.
    ///
    /// # Errors
    /// - `JoinRefusal::Full` if `max_users` other users are present;
    /// - `JoinRefusal::Closed` if [`RoomBroker::close`] was called for the room;
    /// - `JoinRefusal::Broker` if the broker fails.
    async fn join(
        &self,
        room: RoomId,
        max_users: usize,
        participant: Participant,
        connection: ConnectionId,
    ) -> Result<Admission, JoinRefusal>;

    /// Removes `connection`; when it was the user's last one, publishes
    /// `UserLeft` and returns the participant who left. Unknown connections are ignored.
    ///
    /// # Errors
    /// `BrokerError` if the broker fails.
    async fn leave(
        &self,
        room: RoomId,
        user: UserId,
        connection: ConnectionId,
    ) -> Result<Option<Participant>, BrokerError>;

    /// Delivers `event` to every connection of the room (none is fine).
    ///
    /// # Errors
    /// `BrokerError` if the broker fails.
    async fn publish(&self, room: RoomId, event: RoomEvent) -> Result<(), BrokerError>;

    /// Refuses every later join and publishes `Closed`.
    ///
    /// # Errors
    /// `BrokerError` if the broker fails.
    async fn close(&self, room: RoomId) -> Result<(), BrokerError>;

    /// The distinct users in the room now.
    ///
    /// # Errors
    /// `BrokerError` if the broker fails.
    async fn participants(&self, room: RoomId) -> Result<Vec<Participant>, BrokerError>;
}
