//! `RedisRoomBroker`: séance rooms shared by every server instance.
//!
//! - **Seats** are leases: one sorted-set entry per connection, scored by
//!   when it expires, renewed by the instance holding the connection every
//!   third of the lease. A join first sweeps the expired entries (announcing
//!   `user_left` for users with none left), so the seats of a crashed
//!   instance are free again within one lease.
//! - **Events** get the room's next sequence number (`INCR`) and are
//!   published on the room's channel in the same script, so the order of the
//!   numbers is the order every subscriber receives them in. The last 256
//!   also go to a stream, the window a reconnecting client could resume from.
//! - **Delivery** is Redis pub/sub: at most once. Each instance holds one
//!   pattern subscription for all rooms and fans out to its own connections;
//!   a gap in a room's numbers makes that room's local connections end
//!   (`Lagged`), and a lost subscription ends every local connection, so a
//!   client never goes on past a missed event: it reconnects and reads the
//!   history.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::StreamExt;
use parley_kernel::{RoomId, RoomMessageId, StoreError, Timestamp, UserId};
use parley_rooms::BrokerError;
use parley_rooms::{
    Admission, ConnectionId, JoinRefusal, Participant, RoomBroker, RoomDelivery, RoomEvent, RoomEvents, RoomMessage,
    SharedEvent, SpiritReply,
};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::Redis;

/// How many events a room buffers on this instance for its slowest local
/// subscriber before that subscriber is told it lagged.
const ROOM_BUFFER: usize = 256;

/// How long a room's keys outlive its last change.
const ROOM_TTL_MS: u64 = 24 * 60 * 60 * 1000;

/// How the rooms share seats.
#[derive(Debug, Clone, Copy)]
pub struct RoomSettings {
    /// How long a seat outlives the last renewal by its instance: the most
    /// time a crashed instance's seats stay taken.
    pub seat_lease: Duration,
}

impl Default for RoomSettings {
    fn default() -> Self {
        Self { seat_lease: Duration::from_secs(30) }
    }
}

/// Shared by every script: KEYS[1] leases (zset "user|connection" -> expiry
/// ms), KEYS[2] users (hash user -> participant JSON), KEYS[3] connection
/// counts (hash user -> n), KEYS[4] sequence, KEYS[5] recent events
/// (stream), KEYS[6] closed flag; ARGV[1] the room's channel.
const COMMON: &str = r#"
local function emit(payload)
  local n = redis.call('INCR', KEYS[4])
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', 256, '*', 'seq', n, 'event', payload)
  redis.call('PUBLISH', ARGV[1], n .. ' ' .. payload)
  return n
end
local function drop_connection(member)
  local user = string.match(member, '^([^|]+)')
  if redis.call('HINCRBY', KEYS[3], user, -1) > 0 then return false end
  redis.call('HDEL', KEYS[3], user)
  local p = redis.call('HGET', KEYS[2], user)
  redis.call('HDEL', KEYS[2], user)
  if p then emit('{"type":"user_left","participant":' .. p .. '}') end
  return p
end
local function sweep(now)
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
  for _, member in ipairs(expired) do
    redis.call('ZREM', KEYS[1], member)
    drop_connection(member)
  end
end
local function touch()
  for i = 1, 6 do redis.call('PEXPIRE', KEYS[i], TTL) end
end
"#;

/// ARGV[2] now ms, ARGV[3] lease expiry ms, ARGV[4] user, ARGV[5]
/// connection, ARGV[6] the name as a JSON string, ARGV[7] max users.
/// Returns {status, first connection, sequence now, participants}.
const JOIN: &str = r#"
if redis.call('EXISTS', KEYS[6]) == 1 then return {'closed', 0, 0, {}} end
sweep(tonumber(ARGV[2]))
local user, member = ARGV[4], ARGV[4] .. '|' .. ARGV[5]
local first = 0
if redis.call('HEXISTS', KEYS[2], user) == 1 then
  if redis.call('ZADD', KEYS[1], ARGV[3], member) == 1 then redis.call('HINCRBY', KEYS[3], user, 1) end
else
  if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[7]) then return {'full', 0, 0, {}} end
  local n = redis.call('INCR', KEYS[4])
  local p = '{"user_id":"' .. user .. '","name":' .. ARGV[6] .. ',"at":' .. n .. '}'
  redis.call('HSET', KEYS[2], user, p)
  redis.call('HSET', KEYS[3], user, 1)
  redis.call('ZADD', KEYS[1], ARGV[3], member)
  local payload = '{"type":"user_joined","participant":' .. p .. '}'
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', 256, '*', 'seq', n, 'event', payload)
  redis.call('PUBLISH', ARGV[1], n .. ' ' .. payload)
  first = 1
end
touch()
return {'ok', first, tonumber(redis.call('GET', KEYS[4]) or '0'), redis.call('HVALS', KEYS[2])}
"#;

/// ARGV[2] user, ARGV[3] connection. The participant JSON if it was the user's last connection.
const LEAVE: &str = r"
if redis.call('ZREM', KEYS[1], ARGV[2] .. '|' .. ARGV[3]) == 0 then return false end
local gone = drop_connection(ARGV[2] .. '|' .. ARGV[3])
touch()
return gone
";

/// ARGV[2] the event.
const PUBLISH: &str = r"
emit(ARGV[2])
touch()
return 1
";

const CLOSE: &str = r#"
redis.call('SET', KEYS[6], '1', 'PX', TTL)
emit('{"type":"session_closed"}')
touch()
return 1
"#;

/// ARGV[2] now ms.
const PARTICIPANTS: &str = r"
sweep(tonumber(ARGV[2]))
return redis.call('HVALS', KEYS[2])
";

/// ARGV[2] new expiry ms, ARGV[3..] members: extends the leases still held.
const RENEW: &str = r"
for i = 3, #ARGV do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[i]) end
touch()
return 1
";

fn script(body: &str) -> redis::Script {
    redis::Script::new(&format!("local TTL = {ROOM_TTL_MS}\n{COMMON}\n{body}"))
}

struct Scripts {
    join: redis::Script,
    leave: redis::Script,
    publish: redis::Script,
    close: redis::Script,
    participants: redis::Script,
    renew: redis::Script,
}

/// An event as it travels between instances.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Wire {
    UserJoined { participant: WireParticipant },
    UserLeft { participant: WireParticipant },
    UserTyping { participant: WireParticipant },
    MessageReceived { message: WireMessage },
    SpiritThinking,
    SpiritResponse { message: WireMessage, reply: WireReply, in_reply_to: Vec<RoomMessageId> },
    SpiritUnavailable,
    SessionClosed,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireParticipant {
    user_id: UserId,
    name: String,
    /// The sequence number of the user's joining: participants sort by it.
    #[serde(default)]
    at: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireMessage {
    id: RoomMessageId,
    session_id: RoomId,
    user_id: Option<UserId>,
    user_name: String,
    message: String,
    is_spirit: bool,
    timestamp: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
struct WireReply {
    message: String,
    word_count: usize,
    letter_timings: Vec<u32>,
}

impl From<&Participant> for WireParticipant {
    fn from(p: &Participant) -> Self {
        Self { user_id: p.user_id, name: p.name.clone(), at: 0 }
    }
}

impl From<WireParticipant> for Participant {
    fn from(p: WireParticipant) -> Self {
        Self { user_id: p.user_id, name: p.name }
    }
}

impl From<&RoomMessage> for WireMessage {
    fn from(m: &RoomMessage) -> Self {
        Self {
            id: m.id,
            session_id: m.room_id,
            user_id: m.user_id,
            user_name: m.user_name.clone(),
            message: m.message.clone(),
            is_spirit: m.is_spirit,
            timestamp: m.timestamp,
        }
    }
}

impl From<WireMessage> for RoomMessage {
    fn from(m: WireMessage) -> Self {
        Self {
            id: m.id,
            room_id: m.session_id,
            user_id: m.user_id,
            user_name: m.user_name,
            message: m.message,
            is_spirit: m.is_spirit,
            timestamp: m.timestamp,
        }
    }
}

fn encode(event: &RoomEvent) -> String {
    let wire = match event {
        RoomEvent::UserJoined(p) => Wire::UserJoined { participant: p.into() },
        RoomEvent::UserLeft(p) => Wire::UserLeft { participant: p.into() },
        RoomEvent::UserTyping(p) => Wire::UserTyping { participant: p.into() },
        RoomEvent::MessageReceived(m) => Wire::MessageReceived { message: m.into() },
        RoomEvent::SpiritThinking => Wire::SpiritThinking,
        RoomEvent::SpiritResponse { message, reply, in_reply_to } => Wire::SpiritResponse {
            message: message.into(),
            reply: WireReply {
                message: reply.message.clone(),
                word_count: reply.word_count,
                letter_timings: reply.letter_timings.clone(),
            },
            in_reply_to: in_reply_to.clone(),
        },
        RoomEvent::SpiritUnavailable => Wire::SpiritUnavailable,
        RoomEvent::Closed => Wire::SessionClosed,
    };
    serde_json::to_string(&wire).unwrap_or_default()
}

fn decode(payload: &str) -> Option<RoomEvent> {
    Some(match serde_json::from_str::<Wire>(payload).ok()? {
        Wire::UserJoined { participant } => RoomEvent::UserJoined(participant.into()),
        Wire::UserLeft { participant } => RoomEvent::UserLeft(participant.into()),
        Wire::UserTyping { participant } => RoomEvent::UserTyping(participant.into()),
        Wire::MessageReceived { message } => RoomEvent::MessageReceived(message.into()),
        Wire::SpiritThinking => RoomEvent::SpiritThinking,
        Wire::SpiritResponse { message, reply, in_reply_to } => RoomEvent::SpiritResponse {
            message: message.into(),
            reply: SpiritReply {
                message: reply.message,
                word_count: reply.word_count,
                letter_timings: reply.letter_timings,
            },
            in_reply_to,
        },
        Wire::SpiritUnavailable => RoomEvent::SpiritUnavailable,
        Wire::SessionClosed => RoomEvent::Closed,
    })
}

/// Participants as stored, in joining order.
fn participants(stored: Vec<String>) -> Vec<Participant> {
    let mut all: Vec<WireParticipant> = stored.iter().filter_map(|p| serde_json::from_str(p).ok()).collect();
    all.sort_by_key(|p| p.at);
    all.into_iter().map(Participant::from).collect()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// What one instance's subscribers receive.
#[derive(Debug, Clone)]
enum Item {
    Event(u64, Arc<SharedEvent>),
    /// The instance missed events of the room.
    Gap,
}

/// A room as this instance sees it: its own connections and their fan-out.
struct LocalRoom {
    events: broadcast::Sender<Item>,
    connections: HashMap<ConnectionId, UserId>,
    /// The last sequence number delivered here; 0: none yet.
    last: u64,
}

#[derive(Default)]
struct Local {
    rooms: Mutex<HashMap<RoomId, LocalRoom>>,
    /// Whether the pattern subscription is live: joins are refused while not.
    subscribed: AtomicBool,
}

impl Local {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, LocalRoom>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn gauge(rooms: &HashMap<RoomId, LocalRoom>) {
        #[allow(clippy::cast_precision_loss)] // a count of rooms
        metrics::gauge!("open_rooms").set(rooms.len() as f64);
    }

    /// Registers `connection` here and subscribes it to the room's local fan-out.
    fn enter(&self, room_id: RoomId, connection: ConnectionId, user: UserId) -> broadcast::Receiver<Item> {
        let mut rooms = self.rooms();
        let room = rooms.entry(room_id).or_insert_with(|| LocalRoom {
            events: broadcast::channel(ROOM_BUFFER).0,
            connections: HashMap::new(),
            last: 0,
        });
        room.connections.insert(connection, user);
        let receiver = room.events.subscribe();
        Self::gauge(&rooms);
        receiver
    }

    fn forget(&self, room_id: RoomId, connection: ConnectionId) {
        let mut rooms = self.rooms();
        if let Some(room) = rooms.get_mut(&room_id) {
            room.connections.remove(&connection);
            if room.connections.is_empty() {
                rooms.remove(&room_id);
            }
        }
        Self::gauge(&rooms);
    }

    /// Ends every local subscription: the instance can no longer tell what it missed.
    fn lose_all(&self) {
        let mut rooms = self.rooms();
        rooms.clear();
        Self::gauge(&rooms);
    }

    fn has(&self, room_id: RoomId) -> bool {
        self.rooms().contains_key(&room_id)
    }

    fn deliver(&self, room_id: RoomId, seq: u64, event: RoomEvent) {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get_mut(&room_id) else { return };
        if seq <= room.last {
            return; // already delivered
        }
        let gap = room.last != 0 && seq != room.last + 1;
        room.last = seq;
        // No receiver is fine: the room's last connection may be leaving.
        if gap {
            tracing::warn!(room_id = %room_id, "missed room events: this instance's members reconnect");
            let _ = room.events.send(Item::Gap);
        } else {
            let _ = room.events.send(Item::Event(seq, SharedEvent::new(event)));
        }
    }

    /// Every lease this instance holds, per room.
    fn leases(&self) -> Vec<(RoomId, Vec<String>)> {
        self.rooms()
            .iter()
            .map(|(room_id, room)| {
                (*room_id, room.connections.iter().map(|(conn, user)| format!("{user}|{conn}")).collect())
            })
            .collect()
    }
}

/// The events of a local subscription after sequence number `after`.
fn deliveries(receiver: broadcast::Receiver<Item>, after: u64) -> RoomEvents {
    futures_util::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(Item::Event(seq, _)) if seq <= after => {}
                Ok(Item::Event(_, event)) => return Some((RoomDelivery::Event(event), receiver)),
                Ok(Item::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some((RoomDelivery::Lagged, receiver));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .boxed()
}

/// Rooms shared through Redis by every instance that uses the same Redis and prefix.
pub struct RedisRoomBroker {
    redis: Redis,
    settings: RoomSettings,
    scripts: Scripts,
    local: Arc<Local>,
}

impl RedisRoomBroker {
    /// The broker, its subscription to every room's channel and the renewal
    /// of this instance's seats (both on the current tokio runtime, until
    /// the broker is dropped).
    #[must_use]
    pub fn new(redis: Redis, settings: RoomSettings) -> Arc<Self> {
        let broker = Arc::new(Self {
            redis,
            settings,
            scripts: Scripts {
                join: script(JOIN),
                leave: script(LEAVE),
                publish: script(PUBLISH),
                close: script(CLOSE),
                participants: script(PARTICIPANTS),
                renew: script(RENEW),
            },
            local: Arc::new(Local::default()),
        });
        tokio::spawn(subscribe(Arc::downgrade(&broker)));
        tokio::spawn(renew(Arc::downgrade(&broker)));
        broker
    }

    /// Whether this instance receives the rooms' events now.
    #[must_use]
    pub fn is_subscribed(&self) -> bool {
        self.local.subscribed.load(Ordering::Acquire)
    }

    fn channel(&self, room_id: RoomId) -> String {
        self.redis.key(&format!("room:{{{room_id}}}"))
    }

    fn keys(&self, room_id: RoomId) -> [String; 6] {
        ["leases", "users", "counts", "seq", "log", "closed"]
            .map(|k| self.redis.key(&format!("room:{{{room_id}}}:{k}")))
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        room_id: RoomId,
        args: &[&str],
    ) -> Result<T, BrokerError> {
        let keys = self.keys(room_id);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let channel = self.channel(room_id);
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(channel.as_str());
        all.extend_from_slice(args);
        self.redis.run(script, &keys, &all).await.map_err(broker_error)
    }

    /// The room a channel name belongs to.
    fn room_of(&self, channel: &str) -> Option<RoomId> {
        channel.strip_prefix(self.redis.prefix())?.strip_prefix("room:{")?.strip_suffix('}')?.parse().ok()
    }

    fn on_message(&self, message: &redis::Msg) {
        let Some(room_id) = self.room_of(message.get_channel_name()) else { return };
        if !self.local.has(room_id) {
            return;
        }
        let Ok(payload) = std::str::from_utf8(message.get_payload_bytes()) else { return };
        let Some((seq, event)) = payload.split_once(' ') else { return };
        let (Ok(seq), Some(event)) = (seq.parse::<u64>(), decode(event)) else {
            tracing::warn!(room_id = %room_id, "an unreadable room event was skipped");
            return;
        };
        self.local.deliver(room_id, seq, event);
    }
}

/// How long the subscription waits before subscribing again after a loss.
const RESUBSCRIBE_AFTER: Duration = Duration::from_millis(250);

/// How often the subscription's connection is checked with a `PING`.
const SUBSCRIPTION_PING: Duration = Duration::from_secs(2);

/// Holds the pattern subscription to every room's channel, and makes it
/// again whenever it is lost.
async fn subscribe(broker: Weak<RedisRoomBroker>) {
    let mut lost_logged = false;
    loop {
        let Some(this) = broker.upgrade() else { return };
        let pattern = this.redis.key("room:*");
        let connected = tokio::time::timeout(crate::COMMAND_TIMEOUT * 2, async {
            let pubsub = this.redis.client().get_async_pubsub().await?;
            let (mut sink, stream) = pubsub.split();
            sink.psubscribe(&pattern).await?;
            Ok::<_, redis::RedisError>((sink, stream))
        })
        .await;
        let Ok(Ok((mut sink, mut stream))) = connected else {
            if !lost_logged {
                tracing::warn!("cannot subscribe to the rooms in Redis: séance joins are refused until it returns");
                lost_logged = true;
            }
            drop(this);
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
            continue;
        };
        this.local.subscribed.store(true, Ordering::Release);
        if lost_logged {
            tracing::info!("subscribed to the rooms in Redis again");
        }
        drop(this);
        let mut ping = tokio::time::interval(SUBSCRIPTION_PING);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let (Some(message), Some(this)) = (message, broker.upgrade()) else { break };
                    this.on_message(&message);
                }
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(crate::COMMAND_TIMEOUT * 2, sink.ping::<redis::Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        break;
                    }
                }
            }
        }
        let Some(this) = broker.upgrade() else { return };
        this.local.subscribed.store(false, Ordering::Release);
        this.local.lose_all();
        metrics::counter!("redis_fallback_total", "what" => "rooms").increment(1);
        tracing::warn!("lost the subscription to the rooms in Redis: this instance's séance connections end");
        lost_logged = true;
        drop(this);
        tokio::time::sleep(RESUBSCRIBE_AFTER).await;
    }
}

/// Renews this instance's seats every third of the lease.
async fn renew(broker: Weak<RedisRoomBroker>) {
    let every = match broker.upgrade() {
        Some(this) => this.settings.seat_lease / 3,
        None => return,
    };
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(100)));
    loop {
        tick.tick().await;
        let Some(this) = broker.upgrade() else { return };
        let expiry = (now_ms() + lease_ms(this.settings.seat_lease)).to_string();
        for (room_id, members) in this.local.leases() {
            let mut args = vec![expiry.as_str()];
            args.extend(members.iter().map(String::as_str));
            if let Err(error) = this.run::<i64>(&this.scripts.renew, room_id, &args).await {
                tracing::debug!(error = %error, "could not renew seats");
            }
        }
    }
}

/// A failed Redis call as the broker's own error.
fn broker_error(error: StoreError) -> BrokerError {
    match error {
        StoreError::Unavailable(cause) => BrokerError::Unavailable(cause),
        StoreError::Unexpected(cause) => BrokerError::Unexpected(cause),
        StoreError::OwnerGone => BrokerError::unexpected("Redis reported an owner gone"),
    }
}

fn lease_ms(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl RoomBroker for RedisRoomBroker {
    async fn join(
        &self,
        room_id: RoomId,
        max_users: usize,
        participant: Participant,
        connection: ConnectionId,
    ) -> Result<Admission, JoinRefusal> {
        let user = participant.user_id;
        let receiver = self.local.enter(room_id, connection, user);
        // Just after start-up (or a loss) the subscription may be on its way.
        let wait_until = tokio::time::Instant::now() + crate::COMMAND_TIMEOUT * 2;
        while !self.is_subscribed() && tokio::time::Instant::now() < wait_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if !self.is_subscribed() {
            self.local.forget(room_id, connection);
            return Err(JoinRefusal::Broker(BrokerError::unavailable("not subscribed to the rooms in Redis")));
        }
        let now = now_ms();
        let (expiry, user_text, connection_text) =
            ((now + lease_ms(self.settings.seat_lease)).to_string(), user.to_string(), connection.to_string());
        let name = serde_json::to_string(&participant.name).unwrap_or_else(|_| "\"\"".to_owned());
        let (now, max) = (now.to_string(), max_users.to_string());
        let answer = self
            .run::<(String, u8, u64, Vec<String>)>(
                &self.scripts.join,
                room_id,
                &[&now, &expiry, &user_text, &connection_text, &name, &max],
            )
            .await;
        let (status, first, seq, present) = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.local.forget(room_id, connection);
                return Err(JoinRefusal::Broker(error));
            }
        };
        match status.as_str() {
            "ok" => Ok(Admission {
                participants: participants(present),
                first_connection: first == 1,
                events: deliveries(receiver, seq),
            }),
            refused => {
                self.local.forget(room_id, connection);
                Err(if refused == "full" { JoinRefusal::Full } else { JoinRefusal::Closed })
            }
        }
    }

    async fn leave(
        &self,
        room_id: RoomId,
        user: UserId,
        connection: ConnectionId,
    ) -> Result<Option<Participant>, BrokerError> {
        self.local.forget(room_id, connection);
        let (user, connection) = (user.to_string(), connection.to_string());
        let gone: Option<String> = self.run(&self.scripts.leave, room_id, &[&user, &connection]).await?;
        Ok(gone.and_then(|p| serde_json::from_str::<WireParticipant>(&p).ok()).map(Participant::from))
    }

    async fn publish(&self, room_id: RoomId, event: RoomEvent) -> Result<(), BrokerError> {
        let payload = encode(&event);
        self.run::<i64>(&self.scripts.publish, room_id, &[&payload]).await.map(|_| ())
    }

    async fn close(&self, room_id: RoomId) -> Result<(), BrokerError> {
        self.run::<i64>(&self.scripts.close, room_id, &[]).await.map(|_| ())
    }

    async fn participants(&self, room_id: RoomId) -> Result<Vec<Participant>, BrokerError> {
        let now = now_ms().to_string();
        let present: Vec<String> = self.run(&self.scripts.participants, room_id, &[&now]).await?;
        Ok(participants(present))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_event_survives_the_wire() {
        let who = Participant { user_id: UserId::new(), name: "Ada \"the\" 👻".to_owned() };
        let message = RoomMessage {
            id: RoomMessageId::new(),
            room_id: RoomId::new(),
            user_id: Some(who.user_id),
            user_name: who.name.clone(),
            message: "hello".to_owned(),
            is_spirit: false,
            timestamp: chrono::Utc::now(),
        };
        let events = [
            RoomEvent::UserJoined(who.clone()),
            RoomEvent::UserLeft(who.clone()),
            RoomEvent::UserTyping(who),
            RoomEvent::MessageReceived(message.clone()),
            RoomEvent::SpiritThinking,
            RoomEvent::SpiritResponse {
                message: message.clone(),
                reply: SpiritReply { message: "boo".to_owned(), word_count: 1, letter_timings: vec![80, 90, 100] },
                in_reply_to: vec![message.id],
            },
            RoomEvent::SpiritUnavailable,
            RoomEvent::Closed,
        ];
        for event in events {
            assert_eq!(decode(&encode(&event)), Some(event));
        }
    }
}
