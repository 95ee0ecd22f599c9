//! Séance rooms: the REST use cases and the live room (join, speak,
//! type, leave), over the room repository and the room broker.

mod spirit;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use parley_kernel::{Clock, Page, PageRequest, RoomId, StoreError, UserId};
use parley_rooms::{
    BrokerError, ConnectionId, JoinRefusal, NewRoom, Participant, Room, RoomBroker, RoomError, RoomEvent, RoomEvents,
    RoomMessage, RoomMessageText, RoomRepository,
};
use parley_users::{DisplayName, UserRepository};

use crate::RateLimiter;

pub use spirit::{LocalSpiritDesk, SPIRIT_PACE, SPIRIT_PERSONA, Spirit, SpiritDesk};

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

/// A room and how many distinct users are connected to it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomView {
    pub room: Room,
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

/// Why a room could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateRoomError {
    /// The host already has `limit` open rooms.
    #[error("the host already has {limit} open sessions")]
    TooManyOpen { limit: u32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A connection admitted to a room.
pub struct JoinedRoom {
    pub room: RoomView,
    /// The joiner, under the name they joined with.
    pub participant: Participant,
    pub participants: Vec<Participant>,
    /// The last [`JOIN_HISTORY`] messages, oldest first.
    pub history: Vec<RoomMessage>,
    /// The room's events from the moment of admission.
    pub events: RoomEvents,
}

pub struct RoomService {
    rooms: Arc<dyn RoomRepository>,
    broker: Arc<dyn RoomBroker>,
    users: Arc<dyn UserRepository>,
    clock: Arc<dyn Clock>,
    spirit: Arc<Spirit>,
    spawner: Arc<dyn Spawner>,
    /// Open rooms one host may have at once; none: no limit.
    max_open_per_host: Option<u32>,
    /// The per-user budget each answer of the spirit spends; none: free.
    spirit_budget: Option<Arc<dyn RateLimiter>>,
}

impl RoomService {
    pub fn new(
        rooms: Arc<dyn RoomRepository>,
        broker: Arc<dyn RoomBroker>,
        users: Arc<dyn UserRepository>,
        clock: Arc<dyn Clock>,
        spirit: Arc<Spirit>,
        spawner: Arc<dyn Spawner>,
    ) -> Self {
        Self { rooms, broker, users, clock, spirit, spawner, max_open_per_host: None, spirit_budget: None }
    }

    /// Refuses to create a room for a host who already has `limit` open.
    #[must_use]
    pub fn max_open_per_host(mut self, limit: u32) -> Self {
        self.max_open_per_host = Some(limit);
        self
    }

    /// Makes every message the spirit is to answer spend one request of its
    /// author's `budget`; past it the message is kept but not answered.
    #[must_use]
    pub fn spirit_budget(mut self, budget: Arc<dyn RateLimiter>) -> Self {
        self.spirit_budget = Some(budget);
        self
    }

    /// The room with its live count. The count comes from the broker: when
    /// that is unreachable (Redis down) the REST answer still comes, counting 0.
    async fn view(&self, room: Room) -> Result<RoomView, StoreError> {
        let participant_count = if room.is_active() {
            match self.broker.participants(room.id).await {
                Ok(present) => present.len(),
                Err(error) => {
                    tracing::warn!(error = %error, room = %room.id, "the room broker did not answer: counted 0");
                    0
                }
            }
        } else {
            0
        };
        Ok(RoomView { room, participant_count })
    }

    /// Creates a room hosted by `host`.
    ///
    /// # Errors
    /// `TooManyOpen` when the host already has the most open rooms
    /// allowed, or a store failure.
    #[tracing::instrument(skip_all, fields(host = %host))]
    pub async fn create(&self, host: UserId, new: NewRoom) -> Result<RoomView, CreateRoomError> {
        // Counted before the insert, not with it: concurrent creates by one
        // host may pass the limit by the few that race. It is an abuse
        // limit, not an invariant of the data.
        if let Some(limit) = self.max_open_per_host
            && self.rooms.count_open(host).await? >= u64::from(limit)
        {
            return Err(CreateRoomError::TooManyOpen { limit });
        }
        let room = Room::create(host, new, self.clock.now());
        self.rooms.create(&room).await?;
        Ok(RoomView { room, participant_count: 0 })
    }

    /// Active rooms, newest first.
    ///
    /// # Errors
    /// A store or broker failure.
    pub async fn list_active(&self, page: &PageRequest) -> Result<Page<RoomView>, StoreError> {
        let rooms = self.rooms.list_active(page).await?;
        let mut views = Vec::with_capacity(rooms.items.len());
        for room in rooms.items {
            views.push(self.view(room).await?);
        }
        Ok(Page { items: views, next_cursor: rooms.next_cursor, total: rooms.total, total_exact: rooms.total_exact })
    }

    /// # Errors
    /// `NotFound`, or a store or broker failure.
    pub async fn get(&self, id: RoomId) -> Result<RoomView, RoomError> {
        let room = self.rooms.get(id).await?;
        Ok(self.view(room).await?)
    }

    /// The room's messages, oldest first.
    ///
    /// # Errors
    /// `NotFound`, or a store failure.
    pub async fn messages(&self, id: RoomId, page: &PageRequest) -> Result<Page<RoomMessage>, RoomError> {
        self.rooms.messages(id, page).await
    }

    /// Closes the room; everyone connected is told and disconnected.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden` (not the host), or a store failure.
    #[tracing::instrument(skip_all, fields(host = %host, room = %id))]
    pub async fn close(&self, host: UserId, id: RoomId) -> Result<RoomView, RoomError> {
        let room = self.rooms.close(host, id, self.clock.now()).await?;
        // The close is committed either way; a broker failure only delays the news.
        if let Err(error) = self.broker.close(id).await {
            tracing::warn!(error = %error, "could not announce the close of a session");
        }
        Ok(RoomView { room, participant_count: 0 })
    }

    /// Admits `connection` of `user` to the room, under `name` or the user's own name.
    ///
    /// # Errors
    /// `NotFound`, `Closed`, `Full`, `UnknownUser`, or a store or broker failure.
    #[tracing::instrument(skip_all, fields(user = %user, room = %id))]
    pub async fn join(
        &self,
        id: RoomId,
        user: UserId,
        name: Option<DisplayName>,
        connection: ConnectionId,
    ) -> Result<JoinedRoom, JoinError> {
        let room = self.rooms.get(id).await.map_err(join_error)?;
        if !room.is_active() {
            return Err(JoinError::Closed);
        }
        let name = match name {
            Some(name) => name.as_str().to_owned(),
            None => self.users.get(user).await?.ok_or(JoinError::UnknownUser)?.name.as_str().to_owned(),
        };
        let participant = Participant { user_id: user, name };
        let max_users = usize::from(room.max_users.get());
        let admission =
            self.broker.join(id, max_users, participant.clone(), connection).await.map_err(
                |refusal| match refusal {
                    JoinRefusal::Full => JoinError::Full,
                    JoinRefusal::Closed => JoinError::Closed,
                    JoinRefusal::Broker(error) => JoinError::Store(error.into()),
                },
            )?;
        // The joiner may appear under the name their first tab used.
        let participant = admission.participants.iter().find(|p| p.user_id == user).cloned().unwrap_or(participant);
        let history = match self.rooms.recent(id, JOIN_HISTORY).await {
            Ok(history) => history,
            Err(error) => {
                self.leave(id, user, connection).await;
                return Err(join_error(error));
            }
        };
        let participant_count = admission.participants.len();
        Ok(JoinedRoom {
            room: RoomView { room, participant_count },
            participant,
            participants: admission.participants,
            history,
            events: admission.events,
        })
    }

    /// Removes `connection` from the room; the user's last one announces their leaving.
    pub async fn leave(&self, id: RoomId, user: UserId, connection: ConnectionId) {
        if let Err(error) = self.broker.leave(id, user, connection).await {
            tracing::warn!(error = %error, room = %id, "could not record a leave");
        }
    }

    /// Stores what `author` says and tells the room; the spirit will answer.
    ///
    /// # Errors
    /// `NotFound`, `Closed`, or a store failure.
    #[tracing::instrument(skip_all, fields(room = %id))]
    pub async fn say(&self, id: RoomId, author: &Participant, text: RoomMessageText) -> Result<RoomMessage, RoomError> {
        let message = RoomMessage::human(id, author, text, self.clock.now());
        self.rooms.add_message(&message).await?;
        // The message is stored: a broker failure must not turn that into an error.
        if let Err(error) = self.broker.publish(id, RoomEvent::MessageReceived(message.clone())).await {
            tracing::warn!(error = %error, "could not announce a message");
        }
        if !self.spirit_may_answer(author.user_id).await {
            tracing::debug!("the author's budget is spent: the spirit does not answer");
        } else if self.spirit.heard(id, message.id).await {
            let spirit = Arc::clone(&self.spirit);
            self.spawner.spawn(Box::pin(async move { spirit.answer(id).await }));
        }
        Ok(message)
    }

    /// Spends one request of `author`'s budget, if the spirit has one.
    async fn spirit_may_answer(&self, author: UserId) -> bool {
        match &self.spirit_budget {
            None => true,
            Some(budget) => budget.check(author).await.allowed,
        }
    }

    /// Tells the others that `who` is typing.
    ///
    /// # Errors
    /// A broker failure.
    pub async fn typing(&self, id: RoomId, who: &Participant) -> Result<(), BrokerError> {
        self.broker.publish(id, RoomEvent::UserTyping(who.clone())).await
    }
}

fn join_error(error: RoomError) -> JoinError {
    match error {
        RoomError::NotFound => JoinError::NotFound,
        RoomError::Closed | RoomError::Forbidden => JoinError::Closed,
        RoomError::Store(error) => JoinError::Store(error),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use parley_kernel::MockClock;
    use parley_rooms::{MaxUsers, MockRoomBroker, MockRoomRepository, RoomName};
    use parley_users::MockUserRepository;

    use super::*;
    use crate::RateDecision;
    use crate::rate_limit::MockRateLimiter;

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(chrono::Utc::now);
        Arc::new(clock)
    }

    /// Counts the background tasks it is given, and drops them.
    #[derive(Default)]
    struct CountingSpawner(Mutex<usize>);

    impl Spawner for CountingSpawner {
        fn spawn(&self, _task: BoxFuture<'static, ()>) {
            *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
        }
    }

    fn service(rooms: MockRoomRepository, spawner: Arc<CountingSpawner>) -> RoomService {
        let mut broker = MockRoomBroker::new();
        broker.expect_publish().returning(|_, _| Ok(()));
        let (rooms, broker): (Arc<dyn RoomRepository>, Arc<dyn RoomBroker>) = (Arc::new(rooms), Arc::new(broker));
        let spirit = Spirit::new(
            Arc::new(parley_conversations::MockLanguageModel::new()),
            "persona",
            Arc::clone(&rooms),
            Arc::clone(&broker),
            clock(),
        );
        RoomService::new(rooms, broker, Arc::new(MockUserRepository::new()), clock(), Arc::new(spirit), spawner)
    }

    fn decision(allowed: bool) -> RateDecision {
        RateDecision { allowed, limit: 1, remaining: 0, reset_seconds: 60, retry_after_seconds: 60 }
    }

    fn new_room() -> NewRoom {
        NewRoom { name: RoomName::parse("Attic").unwrap_or_else(|_| unreachable!()), max_users: MaxUsers::default() }
    }

    #[tokio::test]
    async fn a_message_past_its_authors_budget_is_stored_and_told_but_not_answered() {
        let (room, author) = (RoomId::new(), Participant { user_id: UserId::new(), name: "Ada".to_owned() });
        let mut rooms = MockRoomRepository::new();
        rooms.expect_add_message().times(2).returning(|_| Ok(()));
        let mut budget = MockRateLimiter::new();
        let mut answers = [true, false].into_iter();
        let who = author.user_id;
        budget
            .expect_check()
            .withf(move |user| *user == who)
            .times(2)
            .returning(move |_| decision(answers.next().unwrap_or(false)));
        let spawner = Arc::new(CountingSpawner::default());
        let service = service(rooms, spawner.clone()).spirit_budget(Arc::new(budget));
        let text = || RoomMessageText::parse("hello").unwrap_or_else(|_| unreachable!());

        assert!(service.say(room, &author, text()).await.is_ok());
        assert!(!service.spirit.heard(room, parley_kernel::RoomMessageId::new()).await, "the first is being answered");
        let other_room = RoomId::new();
        assert!(service.say(other_room, &author, text()).await.is_ok(), "stored anyway");

        assert_eq!(*spawner.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner), 1, "one reply only");
        assert!(service.spirit.heard(other_room, parley_kernel::RoomMessageId::new()).await, "never offered");
    }

    #[tokio::test]
    async fn a_host_with_the_most_open_sessions_cannot_open_another() {
        let host = UserId::new();
        let mut rooms = MockRoomRepository::new();
        let mut open = [1_u64, 2].into_iter();
        rooms.expect_count_open().withf(move |h| *h == host).returning(move |_| Ok(open.next().unwrap_or(9)));
        rooms.expect_create().times(1).returning(|_| Ok(()));
        let service = service(rooms, Arc::default()).max_open_per_host(2);

        assert!(service.create(host, new_room()).await.is_ok());
        let refused = service.create(host, new_room()).await;

        assert!(matches!(refused, Err(CreateRoomError::TooManyOpen { limit: 2 })), "{refused:?}");
    }
}
