//! Flood control: token buckets, and the places each user has in a room
//! (how many connections, and one message budget shared by all of them).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use parley_kernel::{RoomId, UserId};

/// Allows `burst` actions at once, refilled at `per_second`.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    #[must_use]
    pub fn new(per_second: u32, burst: u32) -> Self {
        Self {
            capacity: f64::from(burst),
            per_second: f64::from(per_second),
            tokens: f64::from(burst),
            updated: Instant::now(),
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self) -> bool {
        self.take_at(Instant::now())
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated);
        self.updated = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_second).min(self.capacity);
    }

    fn take_at(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is whole again at `now` (nothing to remember).
    fn is_full_at(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

/// One user in one room: their open connections and their message budget.
struct Place {
    connections: usize,
    messages: TokenBucket,
}

/// The places of every user in every room of this process.
pub struct Places {
    max_connections: usize,
    message_rate: (u32, u32),
    places: Mutex<HashMap<(RoomId, UserId), Place>>,
}

/// Places kept with no connection (a spent budget outlives a reconnect)
/// before the whole ones are swept.
const SWEEP_AT: usize = 4096;

impl Places {
    /// At most `max_connections` per user per room; `message_rate` is
    /// (per second, burst) of each user's messages in a room.
    #[must_use]
    pub fn new(max_connections: usize, message_rate: (u32, u32)) -> Self {
        Self { max_connections, message_rate, places: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(RoomId, UserId), Place>> {
        self.places.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A connection's place for `user` in `room`; `None` when the user
    /// already has the most connections allowed there.
    pub fn take(self: &Arc<Self>, room: RoomId, user: UserId) -> Option<PlaceGuard> {
        let mut places = self.lock();
        if places.len() >= SWEEP_AT {
            let now = Instant::now();
            places.retain(|_, place| place.connections > 0 || !place.messages.is_full_at(now));
        }
        let (per_second, burst) = self.message_rate;
        let place = places
            .entry((room, user))
            .or_insert_with(|| Place { connections: 0, messages: TokenBucket::new(per_second, burst) });
        if place.connections >= self.max_connections {
            return None;
        }
        place.connections += 1;
        Some(PlaceGuard { places: Arc::clone(self), key: (room, user) })
    }
}

/// A connection's place; given back when dropped.
pub struct PlaceGuard {
    places: Arc<Places>,
    key: (RoomId, UserId),
}

impl PlaceGuard {
    /// Spends one message of the user's budget in this room, shared by all
    /// their connections.
    pub fn try_message(&self) -> bool {
        self.places.lock().get_mut(&self.key).is_some_and(|place| place.messages.try_take())
    }
}

impl Drop for PlaceGuard {
    fn drop(&mut self) {
        let mut places = self.places.lock();
        if let Some(place) = places.get_mut(&self.key) {
            place.connections = place.connections.saturating_sub(1);
            if place.connections == 0 && place.messages.is_full_at(Instant::now()) {
                places.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut bucket = TokenBucket::new(5, 10);
        let start = bucket.updated;
        assert_eq!((0..12).filter(|_| bucket.take_at(start)).count(), 10);
        assert!(!bucket.take_at(start + Duration::from_millis(100)));
        assert!(bucket.take_at(start + Duration::from_millis(300)));
    }

    #[test]
    fn a_users_connections_share_one_budget_and_are_bounded() {
        let places = Arc::new(Places::new(2, (1, 3)));
        let (room, ada) = (RoomId::new(), UserId::new());
        let first = places.take(room, ada).unwrap_or_else(|| unreachable!());
        let second = places.take(room, ada).unwrap_or_else(|| unreachable!());
        assert!(places.take(room, ada).is_none(), "a third connection");
        assert!(places.take(room, UserId::new()).is_some(), "another user");
        assert!(places.take(RoomId::new(), ada).is_some(), "another room");

        let spent = [first.try_message(), second.try_message(), first.try_message(), second.try_message()];
        assert_eq!(spent, [true, true, true, false]);

        drop(first);
        let again = places.take(room, ada).unwrap_or_else(|| unreachable!());
        assert!(!again.try_message(), "a new connection does not renew the budget");
        drop((second, again));
        assert!(places.take(room, ada).is_some_and(|place| !place.try_message()), "nor does reconnecting");
    }
}
