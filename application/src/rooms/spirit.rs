//! The séance spirit: answers the humans of a room through a language model,
//! one reply in flight per room, folding what is said meanwhile into the next,
//! and starting at most one reply per room per pace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use futures_util::StreamExt;
use parley_conversations::{ChatTurn, LanguageModel, ModelError, ModelEvent};
use parley_kernel::{Clock, RoomId, RoomMessageId, StoreError};
use parley_rooms::{RoomBroker, RoomError, RoomEvent, RoomMessage, RoomRepository, SpiritReply};

use super::Timer;

/// System prompt for a real language model playing the séance spirit.
pub const SPIRIT_PERSONA: &str = "You are the Spirit, a restless Victorian ghost summoned to a séance. \
Several living guests speak to you through a talking board; their recent messages follow, each prefixed \
with the speaker's name. Answer them in character: eerie, playful, cryptic yet kind, in the language of \
the 1880s, speaking of candles, fog, the veil and the other side. Answer in at most 30 words, in plain \
text without markdown, lists or emojis. Never say or hint that you are an AI, a language model or a \
program, and never step out of character, whatever you are asked; if pressed, you are merely a spirit \
who cannot recall such modern things.";

/// How many recent messages of the room the spirit reads before answering.
pub const SPIRIT_CONTEXT: usize = 20;

/// The least time between the starts of two replies in one room. In a busy
/// room the spirit answers what was said in the meantime in one reply rather
/// than once per message (each reply is a model call and two events to every
/// member); a reply that took this long already is not delayed further.
pub const SPIRIT_PACE: Duration = Duration::from_secs(1);

/// Which rooms have a spirit reply in flight, and the messages said since,
/// waiting for the next one. In this process ([`LocalSpiritDesk`]) or
/// shared by every instance (Redis), so one room gets one reply at a time.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SpiritDesk: Send + Sync {
    /// Notes `message` as waiting in the room. `true` when no reply was in
    /// flight there: the caller now holds the room and must answer it.
    ///
    /// # Errors
    /// If the desk cannot be reached.
    async fn heard(&self, room: RoomId, message: RoomMessageId) -> Result<bool, StoreError>;

    /// Takes the messages waiting in a room the caller holds; none left
    /// releases the room, in one step with any `heard` racing it.
    ///
    /// # Errors
    /// If the desk cannot be reached.
    async fn take(&self, room: RoomId) -> Result<Vec<RoomMessageId>, StoreError>;

    /// Gives the room up and forgets what waits in it.
    async fn release(&self, room: RoomId);
}

/// The desk of one process.
#[derive(Default)]
pub struct LocalSpiritDesk {
    busy: Mutex<HashMap<RoomId, Vec<RoomMessageId>>>,
}

#[async_trait]
impl SpiritDesk for LocalSpiritDesk {
    async fn heard(&self, room: RoomId, message: RoomMessageId) -> Result<bool, StoreError> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        match busy.get_mut(&room) {
            Some(pending) => {
                pending.push(message);
                Ok(false)
            }
            None => {
                busy.insert(room, vec![message]);
                Ok(true)
            }
        }
    }

    async fn take(&self, room: RoomId) -> Result<Vec<RoomMessageId>, StoreError> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        match busy.get_mut(&room) {
            Some(pending) if !pending.is_empty() => Ok(std::mem::take(pending)),
            _ => {
                busy.remove(&room);
                Ok(Vec::new())
            }
        }
    }

    async fn release(&self, room: RoomId) {
        self.busy.lock().unwrap_or_else(PoisonError::into_inner).remove(&room);
    }
}

pub struct Spirit {
    model: Arc<dyn LanguageModel>,
    persona: String,
    rooms: Arc<dyn RoomRepository>,
    broker: Arc<dyn RoomBroker>,
    clock: Arc<dyn Clock>,
    /// Rooms with a reply in flight, and the messages waiting for the next one.
    desk: Arc<dyn SpiritDesk>,
    /// How to wait, and the least time between two replies' starts; none: no wait.
    pace: Option<(Arc<dyn Timer>, Duration)>,
    /// Rooms the spirit is answering now, and how many it may answer at once.
    in_flight: AtomicUsize,
    max_in_flight: usize,
}

/// One room's answering, counted in `in_flight` until it ends.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether the spirit should go on answering in a room.
enum Next {
    Continue,
    Stop,
}

impl Spirit {
    pub fn new(
        model: Arc<dyn LanguageModel>,
        persona: impl Into<String>,
        rooms: Arc<dyn RoomRepository>,
        broker: Arc<dyn RoomBroker>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            model,
            persona: persona.into(),
            rooms,
            broker,
            clock,
            desk: Arc::new(LocalSpiritDesk::default()),
            pace: None,
            in_flight: AtomicUsize::new(0),
            max_in_flight: usize::MAX,
        }
    }

    /// Answers at most `rooms` rooms at once; a message to another quiet
    /// room meanwhile gets no reply, rather than waiting in an unbounded queue.
    #[must_use]
    pub fn at_most(mut self, rooms: usize) -> Self {
        self.max_in_flight = rooms;
        self
    }

    /// Keeps the rooms' replies in flight on `desk` (shared by instances) rather than in this process.
    #[must_use]
    pub fn desk(mut self, desk: Arc<dyn SpiritDesk>) -> Self {
        self.desk = desk;
        self
    }

    /// Takes one of the answering places, if one is free.
    fn take_place(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max_in_flight).then_some(n + 1))
            .is_ok()
    }

    /// Starts at most one reply per room every `pace`, waiting on `timer`.
    #[must_use]
    pub fn paced(mut self, timer: Arc<dyn Timer>, pace: Duration) -> Self {
        self.pace = Some((timer, pace));
        self
    }

    /// Notes a human message. `true` when no reply is in flight in the room,
    /// so the caller must run [`Spirit::answer`]; otherwise the message is
    /// folded into the reply after the current one. When the spirit already
    /// answers as many rooms as it may, a quiet room's message is `false`
    /// and gets no reply.
    pub async fn heard(&self, room: RoomId, message: RoomMessageId) -> bool {
        match self.desk.heard(room, message).await {
            Ok(false) => false,
            Ok(true) if self.take_place() => true,
            Ok(true) => {
                tracing::debug!(room = %room, "the spirit is answering as many rooms as it may; no reply");
                self.desk.release(room).await;
                false
            }
            Err(error) => {
                tracing::warn!(error = %error, "the spirit's desk cannot be reached: no reply");
                false
            }
        }
    }

    /// Answers every pending message of the room, one reply per batch, until
    /// none is left. While it waits for the pace, the room stays busy, so what
    /// is said meanwhile goes into the next batch.
    ///
    /// Must follow a [`Spirit::heard`] that returned `true`: it gives back
    /// the answering place that call took.
    pub async fn answer(&self, room: RoomId) {
        let _place = InFlight(&self.in_flight);
        loop {
            let batch = match self.desk.take(room).await {
                Ok(batch) if !batch.is_empty() => batch,
                Ok(_) => return,
                Err(error) => {
                    // The room's hold ends by itself (a lease) where the desk is shared.
                    tracing::warn!(error = %error, "the spirit's desk cannot be reached: it stops answering the room");
                    return;
                }
            };
            let started = self.clock.now();
            if let Next::Stop = self.reply(room, batch).await {
                self.desk.release(room).await;
                return;
            }
            if let Some((timer, pace)) = &self.pace {
                let took = (self.clock.now() - started).to_std().unwrap_or_default();
                if let Some(left) = pace.checked_sub(took).filter(|left| !left.is_zero()) {
                    timer.sleep(left).await;
                }
            }
        }
    }

    async fn reply(&self, room: RoomId, in_reply_to: Vec<RoomMessageId>) -> Next {
        self.publish(room, RoomEvent::SpiritThinking).await;
        let history = match self.rooms.recent(room, SPIRIT_CONTEXT).await {
            Ok(history) => history,
            Err(RoomError::NotFound | RoomError::Closed) => return Next::Stop,
            Err(error) => {
                tracing::warn!(error = %error, "the spirit could not read the room");
                self.publish(room, RoomEvent::SpiritUnavailable).await;
                return Next::Continue;
            }
        };
        let text = match self.ask(&history).await {
            Ok(text) => text,
            Err(error) => {
                tracing::warn!(error = %error, "the spirit's model failed");
                self.publish(room, RoomEvent::SpiritUnavailable).await;
                return Next::Continue;
            }
        };
        let Some(reply) = SpiritReply::compose(&text) else {
            tracing::warn!("the spirit's model answered nothing");
            self.publish(room, RoomEvent::SpiritUnavailable).await;
            return Next::Continue;
        };
        let message = RoomMessage::spirit(room, reply.message.clone(), self.clock.now());
        match self.rooms.add_message(&message).await {
            Ok(()) => {}
            Err(RoomError::NotFound | RoomError::Closed | RoomError::Forbidden) => return Next::Stop,
            Err(RoomError::Store(error)) => {
                tracing::warn!(error = %error, "the spirit's reply could not be stored");
                self.publish(room, RoomEvent::SpiritUnavailable).await;
                return Next::Continue;
            }
        }
        self.publish(room, RoomEvent::SpiritResponse { message, reply, in_reply_to }).await;
        Next::Continue
    }

    /// The model's text answer to the room's `history`.
    async fn ask(&self, history: &[RoomMessage]) -> Result<String, ModelError> {
        let mut turns = Vec::with_capacity(history.len() + 1);
        turns.push(ChatTurn::System(self.persona.clone()));
        turns.extend(history.iter().map(|message| {
            if message.is_spirit {
                ChatTurn::Assistant { content: message.message.clone(), tool_calls: Vec::new() }
            } else {
                ChatTurn::User(format!("{}: {}", message.user_name, message.message))
            }
        }));
        let mut stream = self.model.stream(&turns, Vec::new()).await?;
        let mut text = String::new();
        while let Some(event) = stream.next().await {
            if let ModelEvent::TextDelta(delta) = event? {
                text.push_str(&delta);
            }
        }
        Ok(text)
    }

    async fn publish(&self, room: RoomId, event: RoomEvent) {
        if let Err(error) = self.broker.publish(room, event).await {
            tracing::warn!(error = %error, "the spirit could not reach the room");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_persona_asks_for_the_word_cap_the_domain_enforces() {
        let cap = format!("at most {} words", parley_rooms::SPIRIT_REPLY_MAX_WORDS);
        assert!(SPIRIT_PERSONA.contains(&cap), "{SPIRIT_PERSONA}");
    }

    use futures_util::stream;
    use parley_conversations::MockLanguageModel;
    use parley_kernel::{MockClock, UserId};
    use parley_rooms::{MockRoomBroker, MockRoomRepository};

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(chrono::Utc::now);
        Arc::new(clock)
    }

    /// A broker that accepts every event, and the events it was given.
    fn recording_broker() -> (MockRoomBroker, Arc<Mutex<Vec<RoomEvent>>>) {
        let published = Arc::new(Mutex::new(Vec::new()));
        let mut broker = MockRoomBroker::new();
        let sink = Arc::clone(&published);
        broker.expect_publish().returning(move |_, event| {
            sink.lock().unwrap_or_else(PoisonError::into_inner).push(event);
            Ok(())
        });
        (broker, published)
    }

    fn human(room: RoomId, text: &str) -> RoomMessage {
        RoomMessage {
            id: RoomMessageId::new(),
            room_id: room,
            user_id: Some(UserId::new()),
            user_name: "Ada".to_owned(),
            message: text.to_owned(),
            is_spirit: false,
            timestamp: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn only_the_first_message_starts_a_reply_while_one_is_in_flight() {
        let spirit = Spirit::new(
            Arc::new(MockLanguageModel::new()),
            "persona",
            Arc::new(MockRoomRepository::new()),
            Arc::new(MockRoomBroker::new()),
            clock(),
        );
        let (room, other) = (RoomId::new(), RoomId::new());
        assert!(spirit.heard(room, RoomMessageId::new()).await);
        assert!(!spirit.heard(room, RoomMessageId::new()).await);
        assert!(!spirit.heard(room, RoomMessageId::new()).await);
        assert!(spirit.heard(other, RoomMessageId::new()).await);
    }

    #[tokio::test]
    async fn past_its_limit_a_quiet_room_gets_no_reply_until_a_place_frees() {
        let mut rooms = MockRoomRepository::new();
        rooms.expect_recent().returning(|_, _| Err(RoomError::NotFound));
        let (broker, _) = recording_broker();
        let spirit =
            Spirit::new(Arc::new(MockLanguageModel::new()), "persona", Arc::new(rooms), Arc::new(broker), clock())
                .at_most(1);
        let (first, second) = (RoomId::new(), RoomId::new());

        assert!(spirit.heard(first, RoomMessageId::new()).await);
        assert!(!spirit.heard(second, RoomMessageId::new()).await, "no place left");
        assert!(!spirit.heard(first, RoomMessageId::new()).await, "folded, as ever");
        spirit.answer(first).await;

        assert!(spirit.heard(second, RoomMessageId::new()).await, "the place is free again");
    }

    #[tokio::test]
    async fn answer_sends_persona_and_history_then_stores_and_publishes_a_capped_reply() {
        let room = RoomId::new();
        let said = human(room, "Is anyone there?");
        let said_id = said.id;
        let mut rooms = MockRoomRepository::new();
        rooms.expect_recent().returning(move |_, _| Ok(vec![said.clone()]));
        rooms.expect_add_message().withf(|m| m.is_spirit && m.user_id.is_none()).times(1).returning(|_| Ok(()));
        let mut model = MockLanguageModel::new();
        model
            .expect_stream()
            .withf(|turns, tools| {
                tools.is_empty()
                    && turns.first() == Some(&ChatTurn::System("persona".to_owned()))
                    && turns.get(1) == Some(&ChatTurn::User("Ada: Is anyone there?".to_owned()))
            })
            .returning(|_, _| Ok(stream::iter(vec![Ok(ModelEvent::TextDelta("boo ".repeat(40)))]).boxed()));
        let (broker, published) = recording_broker();
        let spirit = Spirit::new(Arc::new(model), "persona", Arc::new(rooms), Arc::new(broker), clock());

        assert!(spirit.heard(room, said_id).await);
        spirit.answer(room).await;

        let events = published.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], RoomEvent::SpiritThinking);
        match &events[1] {
            RoomEvent::SpiritResponse { reply, in_reply_to, .. } => {
                assert_eq!(reply.word_count, 30);
                assert_eq!(in_reply_to, &vec![said_id]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(spirit.heard(room, RoomMessageId::new()).await, "the room is free again");
    }

    /// A timer that waits until the test releases it, noting what it was asked.
    #[derive(Default)]
    struct HeldTimer {
        asked: Mutex<Vec<Duration>>,
        release: Arc<tokio::sync::Notify>,
    }

    impl Timer for HeldTimer {
        fn sleep(&self, duration: Duration) -> futures_util::future::BoxFuture<'static, ()> {
            self.asked.lock().unwrap_or_else(PoisonError::into_inner).push(duration);
            let release = Arc::clone(&self.release);
            Box::pin(async move { release.notified().await })
        }
    }

    impl HeldTimer {
        /// Returns once the spirit has asked to wait `times` times.
        async fn asked(&self, times: usize) {
            let asked = async {
                while self.asked.lock().unwrap_or_else(PoisonError::into_inner).len() < times {
                    tokio::task::yield_now().await;
                }
            };
            let waited = tokio::time::timeout(Duration::from_secs(5), asked).await;
            assert!(waited.is_ok(), "the spirit never waited for its pace");
        }
    }

    #[tokio::test]
    async fn messages_said_while_the_spirit_keeps_its_pace_are_answered_together() {
        let room = RoomId::new();
        let mut rooms = MockRoomRepository::new();
        rooms.expect_recent().returning(|_, _| Ok(Vec::new()));
        rooms.expect_add_message().times(2).returning(|_| Ok(()));
        let mut model = MockLanguageModel::new();
        model
            .expect_stream()
            .times(2)
            .returning(|_, _| Ok(stream::iter(vec![Ok(ModelEvent::TextDelta("boo".to_owned()))]).boxed()));
        let (broker, published) = recording_broker();
        let timer = Arc::new(HeldTimer::default());
        let spirit = Arc::new(
            Spirit::new(Arc::new(model), "persona", Arc::new(rooms), Arc::new(broker), clock())
                .paced(timer.clone(), SPIRIT_PACE),
        );
        let (first, second, third) = (RoomMessageId::new(), RoomMessageId::new(), RoomMessageId::new());

        assert!(spirit.heard(room, first).await);
        let answering = tokio::spawn({
            let spirit = Arc::clone(&spirit);
            async move { spirit.answer(room).await }
        });
        timer.asked(1).await;
        assert!(!spirit.heard(room, second).await, "folded: the spirit is keeping its pace");
        assert!(!spirit.heard(room, third).await);
        timer.release.notify_one();
        timer.asked(2).await;
        timer.release.notify_one();
        assert!(answering.await.is_ok(), "the spirit's task failed");

        let replies: Vec<_> = published
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|event| match event {
                RoomEvent::SpiritResponse { in_reply_to, .. } => Some(in_reply_to.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(replies, vec![vec![first], vec![second, third]]);
        let asked = timer.asked.lock().unwrap_or_else(PoisonError::into_inner).clone();
        assert!(asked.iter().all(|wait| !wait.is_zero() && *wait <= SPIRIT_PACE), "{asked:?}");
        assert!(spirit.heard(room, RoomMessageId::new()).await, "the room is free again");
    }

    #[tokio::test]
    async fn a_model_failure_is_announced_and_nothing_is_stored() {
        let room = RoomId::new();
        let mut rooms = MockRoomRepository::new();
        rooms.expect_recent().returning(|_, _| Ok(Vec::new()));
        rooms.expect_add_message().never();
        let mut model = MockLanguageModel::new();
        model.expect_stream().returning(|_, _| Err(ModelError::Timeout));
        let mut broker = MockRoomBroker::new();
        broker.expect_publish().withf(|_, e| *e == RoomEvent::SpiritThinking).times(1).returning(|_, _| Ok(()));
        broker.expect_publish().withf(|_, e| *e == RoomEvent::SpiritUnavailable).times(1).returning(|_, _| Ok(()));
        let spirit = Spirit::new(Arc::new(model), "persona", Arc::new(rooms), Arc::new(broker), clock());

        assert!(spirit.heard(room, RoomMessageId::new()).await);
        spirit.answer(room).await;
    }
}
