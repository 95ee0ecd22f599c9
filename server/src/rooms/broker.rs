//! `LocalRoomBroker`: the in-process `RoomBroker`, one tokio broadcast
//! channel per room. It serves a single server instance.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures_util::StreamExt;
use parley_kernel::{RoomId, UserId};
use parley_rooms::{
    Admission, BrokerError, ConnectionId, JoinRefusal, Participant, RoomBroker, RoomDelivery, RoomEvent, SharedEvent,
};
use tokio::sync::broadcast;

/// How many events a room buffers for its slowest subscriber before that
/// subscriber is told it lagged.
const ROOM_BUFFER: usize = 256;

/// The rooms of this process. Every change of presence happens under one
/// lock, which makes capacity checks and presence events atomic.
#[derive(Default)]
pub struct LocalRoomBroker {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    rooms: HashMap<RoomId, Room>,
    closed: HashSet<RoomId>,
}

struct Room {
    events: broadcast::Sender<Arc<SharedEvent>>,
    /// In joining order.
    members: Vec<Member>,
}

struct Member {
    participant: Participant,
    connections: HashSet<ConnectionId>,
}

impl Room {
    fn participants(&self) -> Vec<Participant> {
        self.members.iter().map(|m| m.participant.clone()).collect()
    }

    fn publish(&self, event: RoomEvent) {
        // No receiver is fine: nobody is listening.
        let _ = self.events.send(SharedEvent::new(event));
    }
}

impl LocalRoomBroker {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn deliveries(receiver: broadcast::Receiver<Arc<SharedEvent>>) -> parley_rooms::RoomEvents {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(event) => Some((RoomDelivery::Event(event), receiver)),
            Err(broadcast::error::RecvError::Lagged(_)) => Some((RoomDelivery::Lagged, receiver)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    })
    .boxed()
}

#[async_trait]
impl RoomBroker for LocalRoomBroker {
    async fn join(
        &self,
        room_id: RoomId,
        max_users: usize,
        participant: Participant,
        connection: ConnectionId,
    ) -> Result<Admission, JoinRefusal> {
        let mut state = self.state();
        if state.closed.contains(&room_id) {
            return Err(JoinRefusal::Closed);
        }
        #[allow(clippy::cast_precision_loss)] // a count of rooms
        metrics::gauge!("open_rooms")
            .set((state.rooms.len() + usize::from(!state.rooms.contains_key(&room_id))) as f64);
        let room = state
            .rooms
            .entry(room_id)
            .or_insert_with(|| Room { events: broadcast::channel(ROOM_BUFFER).0, members: Vec::new() });
        let events = deliveries(room.events.subscribe());
        let present = room.members.iter().position(|m| m.participant.user_id == participant.user_id);
        let first_connection = match present {
            Some(index) => {
                room.members[index].connections.insert(connection);
                false
            }
            None if room.members.len() >= max_users => {
                if room.members.is_empty() {
                    state.rooms.remove(&room_id);
                }
                return Err(JoinRefusal::Full);
            }
            None => {
                room.members
                    .push(Member { participant: participant.clone(), connections: HashSet::from([connection]) });
                room.publish(RoomEvent::UserJoined(participant));
                true
            }
        };
        Ok(Admission { participants: room.participants(), first_connection, events })
    }

    async fn leave(
        &self,
        room_id: RoomId,
        user: UserId,
        connection: ConnectionId,
    ) -> Result<Option<Participant>, BrokerError> {
        let mut state = self.state();
        let Some(room) = state.rooms.get_mut(&room_id) else { return Ok(None) };
        let Some(index) = room.members.iter().position(|m| m.participant.user_id == user) else { return Ok(None) };
        let member = &mut room.members[index];
        if !member.connections.remove(&connection) || !member.connections.is_empty() {
            return Ok(None);
        }
        let gone = room.members.remove(index).participant;
        room.publish(RoomEvent::UserLeft(gone.clone()));
        if room.members.is_empty() {
            state.rooms.remove(&room_id);
            #[allow(clippy::cast_precision_loss)] // a count of rooms
            metrics::gauge!("open_rooms").set(state.rooms.len() as f64);
        }
        Ok(Some(gone))
    }

    async fn publish(&self, room_id: RoomId, event: RoomEvent) -> Result<(), BrokerError> {
        if let Some(room) = self.state().rooms.get(&room_id) {
            room.publish(event);
        }
        Ok(())
    }

    async fn close(&self, room_id: RoomId) -> Result<(), BrokerError> {
        let mut state = self.state();
        state.closed.insert(room_id);
        if let Some(room) = state.rooms.get(&room_id) {
            room.publish(RoomEvent::Closed);
        }
        Ok(())
    }

    async fn participants(&self, room_id: RoomId) -> Result<Vec<Participant>, BrokerError> {
        Ok(self.state().rooms.get(&room_id).map(Room::participants).unwrap_or_default())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn person(name: &str) -> Participant {
        Participant { user_id: UserId::new(), name: name.to_owned() }
    }

    #[tokio::test]
    async fn capacity_counts_distinct_users_under_concurrent_joins() {
        let broker = Arc::new(LocalRoomBroker::new());
        let room = RoomId::new();
        let joins: Vec<_> = (0..10)
            .map(|i| {
                let broker = Arc::clone(&broker);
                tokio::spawn(async move { broker.join(room, 2, person(&format!("p{i}")), ConnectionId::new()).await })
            })
            .collect();
        let mut admitted = 0;
        for join in joins {
            match join.await.unwrap() {
                Ok(_) => admitted += 1,
                Err(JoinRefusal::Full) => {}
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(admitted, 2);
        assert_eq!(broker.participants(room).await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_second_tab_is_admitted_when_full_and_leaving_announces_only_the_last_tab() {
        let broker = LocalRoomBroker::new();
        let room = RoomId::new();
        let (ada, bob) = (person("Ada"), person("Bob"));
        let (tab1, tab2) = (ConnectionId::new(), ConnectionId::new());
        let mut watcher = broker.join(room, 2, bob.clone(), ConnectionId::new()).await.unwrap().events;
        assert!(broker.join(room, 2, ada.clone(), tab1).await.unwrap().first_connection);
        assert!(!broker.join(room, 2, ada.clone(), tab2).await.unwrap().first_connection);
        assert!(matches!(broker.join(room, 2, person("Cy"), ConnectionId::new()).await, Err(JoinRefusal::Full)));

        assert_eq!(broker.leave(room, ada.user_id, tab1).await.unwrap(), None);
        assert_eq!(broker.leave(room, ada.user_id, tab2).await.unwrap(), Some(ada.clone()));

        assert_eq!(watcher.next().await, Some(RoomDelivery::Event(SharedEvent::new(RoomEvent::UserJoined(bob)))));
        assert_eq!(
            watcher.next().await,
            Some(RoomDelivery::Event(SharedEvent::new(RoomEvent::UserJoined(ada.clone()))))
        );
        assert_eq!(watcher.next().await, Some(RoomDelivery::Event(SharedEvent::new(RoomEvent::UserLeft(ada)))));
    }

    #[tokio::test]
    async fn a_closed_room_refuses_joins_and_tells_its_members() {
        let broker = LocalRoomBroker::new();
        let room = RoomId::new();
        let mut events = broker.join(room, 2, person("Ada"), ConnectionId::new()).await.unwrap().events;
        broker.close(room).await.unwrap();
        assert!(matches!(broker.join(room, 2, person("Bob"), ConnectionId::new()).await, Err(JoinRefusal::Closed)));
        let _joined = events.next().await;
        assert_eq!(events.next().await, Some(RoomDelivery::Event(SharedEvent::new(RoomEvent::Closed))));
    }
}
