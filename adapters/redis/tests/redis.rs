//! The Redis adapters against a real Redis (`TEST_REDIS_URL`, else the
//! local default), each test under a key prefix of its own.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic

use std::time::Duration;

use futures_util::StreamExt;
use parley_application::RateLimiter;
use parley_kernel::{RoomId, UserId};
use parley_redis::{Redis, RedisRateLimiter, RedisRoomBroker, RoomSettings};
use parley_rooms::{ConnectionId, JoinRefusal, Participant, RoomBroker, RoomDelivery, RoomEvent};

/// A test's own key prefix; its keys are deleted on drop.
struct Prefix {
    url: String,
    prefix: String,
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let deleted = (|| -> redis::RedisResult<()> {
            let mut connection = redis::Client::open(self.url.as_str())?.get_connection()?;
            let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query(&mut connection)?;
            if !keys.is_empty() {
                redis::cmd("DEL").arg(&keys).query::<i64>(&mut connection)?;
            }
            Ok(())
        })();
        if deleted.is_err() {
            eprintln!("warning: a test's Redis keys could not be deleted");
        }
    }
}

fn redis() -> (Redis, Prefix) {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("parley-test-{}:", uuid::Uuid::new_v4().simple());
    (Redis::open(&url, &prefix).unwrap(), Prefix { url, prefix })
}

/// Never asked: the tests below must be answered by Redis.
struct Unreachable;

#[async_trait::async_trait]
impl RateLimiter for Unreachable {
    async fn check(&self, _user: UserId) -> parley_application::RateDecision {
        panic!("the local limiter was asked")
    }
}

#[tokio::test]
async fn two_limiters_on_one_redis_spend_one_budget() {
    let (redis, _prefix) = redis();
    let (a, b) = (
        RedisRateLimiter::new(redis.clone(), 4, std::sync::Arc::new(Unreachable)),
        RedisRateLimiter::new(redis.clone(), 4, std::sync::Arc::new(Unreachable)),
    );
    let user = UserId::new();
    let mut remaining = Vec::new();
    for limiter in [&a, &b, &a, &b] {
        let decision = limiter.check(user).await;
        assert!(decision.allowed);
        remaining.push(decision.remaining);
    }
    assert_eq!(remaining, vec![3, 2, 1, 0]);
    let refused = b.check(user).await;
    assert!(!refused.allowed);
    assert_eq!((refused.retry_after_seconds, refused.reset_seconds), (15, 60));
}

fn person(name: &str) -> Participant {
    Participant { user_id: UserId::new(), name: name.to_owned() }
}

#[tokio::test]
async fn a_joiner_on_one_broker_is_heard_on_another() {
    let (redis, _prefix) = redis();
    let settings = RoomSettings::default();
    let (a, b) = (RedisRoomBroker::new(redis.clone(), settings), RedisRoomBroker::new(redis.clone(), settings));
    let room = RoomId::new();
    let (ada, bob) = (person("Ada"), person("Bob \"the\" ghost"));
    let admitted = a.join(room, 2, ada.clone(), ConnectionId::new()).await.unwrap();
    assert!(admitted.first_connection);
    let mut events = admitted.events;
    let second = b.join(room, 2, bob.clone(), ConnectionId::new()).await.unwrap();
    assert_eq!(second.participants, vec![ada.clone(), bob.clone()], "in joining order");
    assert!(matches!(b.join(room, 2, person("Cy"), ConnectionId::new()).await, Err(JoinRefusal::Full)));
    b.publish(room, RoomEvent::SpiritThinking).await.unwrap();

    let seen = tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap();
    assert_eq!(
        seen.map(|d| matches!(d, RoomDelivery::Event(e) if *e.event() == RoomEvent::UserJoined(bob.clone()))),
        Some(true)
    );
    let seen = tokio::time::timeout(Duration::from_secs(5), events.next()).await.unwrap();
    assert_eq!(
        seen.map(|d| matches!(d, RoomDelivery::Event(e) if *e.event() == RoomEvent::SpiritThinking)),
        Some(true)
    );
    assert_eq!(a.participants(room).await.unwrap().len(), 2);
}

#[tokio::test]
async fn one_room_has_one_spirit_hold_across_desks_and_what_waits_is_folded() {
    use parley_application::SpiritDesk;
    use parley_kernel::RoomMessageId;
    use parley_redis::RedisSpiritDesk;

    let (redis, _prefix) = redis();
    let (a, b) = (RedisSpiritDesk::new(redis.clone()), RedisSpiritDesk::new(redis.clone()));
    let room = RoomId::new();
    let said: Vec<RoomMessageId> = (0..4).map(|_| RoomMessageId::new()).collect();

    assert!(a.heard(room, said[0]).await.unwrap(), "a free room: A holds it");
    assert!(!b.heard(room, said[1]).await.unwrap(), "held by A: folded");
    assert_eq!(a.take(room).await.unwrap(), vec![said[0], said[1]]);
    assert!(!b.heard(room, said[2]).await.unwrap(), "still held while A answers");
    assert_eq!(a.take(room).await.unwrap(), vec![said[2]]);
    assert_eq!(a.take(room).await.unwrap(), Vec::<RoomMessageId>::new(), "nothing left: released");
    assert!(b.heard(room, said[3]).await.unwrap(), "free again: B holds it");
    b.release(room).await;
    assert!(a.heard(RoomId::new(), said[3]).await.unwrap(), "rooms are apart");
}

/// Answers every check with a budget of 7, to show who answered.
struct Seven;

#[async_trait::async_trait]
impl RateLimiter for Seven {
    async fn check(&self, _user: UserId) -> parley_application::RateDecision {
        parley_application::RateDecision {
            allowed: true,
            limit: 7,
            remaining: 6,
            reset_seconds: 9,
            retry_after_seconds: 0,
        }
    }
}

#[tokio::test]
async fn an_unreachable_redis_leaves_the_budget_to_the_local_limiter() {
    // Nothing listens on port 1.
    let redis = Redis::open("redis://127.0.0.1:1", "parley-test-unreachable:").unwrap();
    let limiter = RedisRateLimiter::new(redis.clone(), 30, std::sync::Arc::new(Seven));
    for _ in 0..3 {
        assert_eq!(limiter.check(UserId::new()).await.limit, 7);
    }
    assert!(!redis.ping().await);
}
