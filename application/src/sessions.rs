//! Séance sessions: the REST use cases and the live room (join, speak,
//! type, leave), over the session repository and the room broker.

mod spirit;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use parley_kernel::{Clock, Page, PageRequest, SessionId, StoreError, UserId};
use parley_sessions::{
    ConnectionId, JoinRefusal, NewSession, Participant, RoomBroker, RoomEvent, RoomEvents, RoomMessageText, Session,
    SessionError, SessionMessage, SessionRepository,
};
use parley_users::{DisplayName, UserRepository};

pub use spirit::{SPIRIT_PACE, Spirit};

/// How many past messages a joiner receives.
pub const JOIN_HISTORY: usize = 50;

/// Runs work in the background, detached from the caller (the spirit's
/// replies). The server implements it on its async runtime.
pub trait Spawner: Send + Sync {
    fn spawn(&self, task: BoxFuture<'static, ()>);
}

/// Waits without holding a thread (the spirit's pace). The server implements
/// it on its async runtime.
pub trait Timer: Send + Sync {
    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<'static, ()>;
}

/// A session and how many distinct users are connected to it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionView {
    pub session: Session,
    pub participant_count: usize,
}

/// Why a connection could not join a room.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("session not found")]
    NotFound,
    #[error("session is closed")]
    Closed,
    #[error("session is full")]
    Full,
    /// The token is valid but its user no longer exists.
    #[error("unknown user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A connection admitted to a room.
pub struct JoinedRoom {
    pub session: SessionView,
    /// The joiner, under the name they joined with.
    pub participant: Participant,
    pub participants: Vec<Participant>,
    /// The last [`JOIN_HISTORY`] messages, oldest first.
    pub history: Vec<SessionMessage>,
    /// The room's events from the moment of admission.
    pub events: RoomEvents,
}

pub struct SessionService {
    sessions: Arc<dyn SessionRepository>,
    broker: Arc<dyn RoomBroker>,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    spirit: Arc<Spirit>,
    spawner: Arc<dyn Spawner>,
}

impl SessionService {
    pub fn new(
        sessions: Arc<dyn SessionRepository>,
        broker: Arc<dyn RoomBroker>,
        users: Arc<dyn UserRepository>,
        clock: Arc<dyn Clock>,
        spirit: Arc<Spirit>,
        spawner: Arc<dyn Spawner>,
    ) -> Self {
        Self { sessions, broker, users, clock, spirit, spawner }
    }

    async fn view(&self, session: Session) -> Result<SessionView, StoreError> {
        let participant_count = if session.is_active() { self.broker.participants(session.id).await?.len() } else { 0 };
        Ok(SessionView { session, participant_count })
    }

    /// Creates a session hosted by `host`.
    ///
    /// # Errors
    /// A store failure.
    #[tracing::instrument(skip_all, fields(host = %host))]
    pub async fn create(&self, host: UserId, new: NewSession) -> Result<SessionView, StoreError> {
        let session = Session::create(host, new, self.clock.now());
        self.sessions.create(&session).await?;
        Ok(SessionView { session, participant_count: 0 })
    }

    /// Active sessions, newest first.
    ///
    /// # Errors
    /// A store or broker failure.
    pub async fn list_active(&self, page: &PageRequest) -> Result<Page<SessionView>, StoreError> {
        let sessions = self.sessions.list_active(page).await?;
        let mut views = Vec::with_capacity(sessions.items.len());
        for session in sessions.items {
            views.push(self.view(session).await?);
        }
        Ok(Page {
            items: views,
            next_cursor: sessions.next_cursor,
            total: sessions.total,
            total_exact: sessions.total_exact,
        })
    }

    /// # Errors
    /// `NotFound`, or a store or broker failure.
    pub async fn get(&self, id: SessionId) -> Result<SessionView, SessionError> {
        let session = self.sessions.get(id).await?;
        Ok(self.view(session).await?)
    }

    /// The session's messages, oldest first.
    ///
    /// # Errors
    /// `NotFound`, or a store failure.
    pub async fn messages(&self, id: SessionId, page: &PageRequest) -> Result<Page<SessionMessage>, SessionError> {
        self.sessions.messages(id, page).await
    }

    /// Closes the session; everyone connected is told and disconnected.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden` (not the host), or a store failure.
    #[tracing::instrument(skip_all, fields(host = %host, session = %id))]
    pub async fn close(&self, host: UserId, id: SessionId) -> Result<SessionView, SessionError> {
        let session = self.sessions.close(host, id, self.clock.now()).await?;
        // The close is committed either way; a broker failure only delays the news.
        if let Err(error) = self.broker.close(id).await {
            tracing::warn!(error = %error, "could not announce the close of a session");
        }
        Ok(SessionView { session, participant_count: 0 })
    }

    /// Admits `connection` of `user` to the room, under `name` or the user's own name.
    ///
    /// # Errors
    /// `NotFound`, `Closed`, `Full`, `UnknownUser`, or a store or broker failure.
    #[tracing::instrument(skip_all, fields(user = %user, session = %id))]
    pub async fn join(
        &self,
        id: SessionId,
        user: UserId,
        name: Option<DisplayName>,
        connection: ConnectionId,
    ) -> Result<JoinedRoom, JoinError> {
        let session = self.sessions.get(id).await.map_err(join_error)?;
        if !session.is_active() {
            return Err(JoinError::Closed);
        }
        let name = match name {
            Some(name) => name.as_str().to_owned(),
            None => self.users.get(user).await?.ok_or(JoinError::UnknownUser)?.name.as_str().to_owned(),
        };
        let participant = Participant { user_id: user, name };
        let max_users = usize::from(session.max_users.get());
        let admission =
            self.broker.join(id, max_users, participant.clone(), connection).await.map_err(
                |refusal| match refusal {
                    JoinRefusal::Full => JoinError::Full,
                    JoinRefusal::Closed => JoinError::Closed,
                    JoinRefusal::Broker(error) => JoinError::Store(error),
                },
            )?;
        // The joiner may appear under the name their first tab used.
        let participant = admission.participants.iter().find(|p| p.user_id == user).cloned().unwrap_or(participant);
        let history = match self.sessions.recent(id, JOIN_HISTORY).await {
            Ok(history) => history,
            Err(error) => {
                self.leave(id, user, connection).await;
                return Err(join_error(error));
            }
        };
        let participant_count = admission.participants.len();
        Ok(JoinedRoom {
            session: SessionView { session, participant_count },
            participant,
            participants: admission.participants,
            history,
            events: admission.events,
        })
    }

    /// Removes `connection` from the room; the user's last one announces their leaving.
    pub async fn leave(&self, id: SessionId, user: UserId, connection: ConnectionId) {
        if let Err(error) = self.broker.leave(id, user, connection).await {
            tracing::warn!(error = %error, session = %id, "could not record a leave");
        }
    }

    /// Stores what `author` says and tells the room; the spirit will answer.
    ///
    /// # Errors
    /// `NotFound`, `Closed`, or a store failure.
    #[tracing::instrument(skip_all, fields(session = %id))]
    pub async fn say(
        &self,
        id: SessionId,
        author: &Participant,
        text: RoomMessageText,
    ) -> Result<SessionMessage, SessionError> {
        let message = SessionMessage::human(id, author, text, self.clock.now());
        self.sessions.add_message(&message).await?;
        // The message is stored: a broker failure must not turn that into an error.
        if let Err(error) = self.broker.publish(id, RoomEvent::MessageReceived(message.clone())).await {
            tracing::warn!(error = %error, "could not announce a message");
        }
        if self.spirit.heard(id, message.id) {
            let spirit = Arc::clone(&self.spirit);
            self.spawner.spawn(Box::pin(async move { spirit.answer(id).await }));
        }
        Ok(message)
    }

    /// Tells the others that `who` is typing.
    ///
    /// # Errors
    /// A broker failure.
    pub async fn typing(&self, id: SessionId, who: &Participant) -> Result<(), StoreError> {
        self.broker.publish(id, RoomEvent::UserTyping(who.clone())).await
    }
}

fn join_error(error: SessionError) -> JoinError {
    match error {
        SessionError::NotFound => JoinError::NotFound,
        SessionError::Closed | SessionError::Forbidden => JoinError::Closed,
        SessionError::Store(error) => JoinError::Store(error),
    }
}
