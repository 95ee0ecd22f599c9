//! `RoomRepository` contract.

use std::collections::HashSet;
use std::sync::Arc;

use parley_kernel::{PageRequest, RoomId, Timestamp, UserId};
use parley_rooms::{MaxUsers, NewRoom, Participant, Room, RoomError, RoomMessage, RoomMessageText, RoomName};

use crate::stores::{Stores, at, user};

fn room(host: UserId, name: &str, created: Timestamp) -> Room {
    let new = NewRoom { name: RoomName::parse(name).expect("name"), max_users: MaxUsers::new(4).expect("max") };
    Room::create(host, new, created)
}

async fn stored(stores: &Stores, host: UserId, name: &str, created: Timestamp) -> Room {
    let room = room(host, name, created);
    stores.rooms.create(&room).await.expect("create session");
    room
}

fn said(room: RoomId, user: UserId, text: &str, when: Timestamp) -> RoomMessage {
    let author = Participant { user_id: user, name: "Ada".to_owned() };
    RoomMessage::human(room, &author, RoomMessageText::parse(text).expect("text"), when)
}

fn page(limit: i64) -> PageRequest {
    PageRequest::new(Some(limit), None).expect("limit")
}

pub async fn room_create_then_get(stores: Stores) {
    let host = user(&stores).await;
    let created = room(host, "The attic", at(1));

    stores.rooms.create(&created).await.expect("create");
    let fetched = stores.rooms.get(created.id).await.expect("get");

    assert_eq!(fetched, created);
    assert!(fetched.is_active());
}

pub async fn room_unknown_is_not_found_everywhere(stores: Stores) {
    let host = user(&stores).await;
    let unknown = RoomId::new();

    assert!(matches!(stores.rooms.get(unknown).await, Err(RoomError::NotFound)));
    assert!(matches!(stores.rooms.close(host, unknown, at(1)).await, Err(RoomError::NotFound)));
    assert!(matches!(stores.rooms.add_message(&said(unknown, host, "hi", at(1))).await, Err(RoomError::NotFound)));
    assert!(matches!(stores.rooms.messages(unknown, &page(10)).await, Err(RoomError::NotFound)));
    assert!(matches!(stores.rooms.recent(unknown, 10).await, Err(RoomError::NotFound)));
}

pub async fn room_close_is_for_the_host_only_and_idempotent(stores: Stores) {
    let (host, guest) = (user(&stores).await, user(&stores).await);
    let room = stored(&stores, host, "Parlour", at(1)).await;

    let refused = stores.rooms.close(guest, room.id, at(2)).await;
    assert!(matches!(refused, Err(RoomError::Forbidden)));
    assert!(stores.rooms.get(room.id).await.expect("get").is_active());

    let closed = stores.rooms.close(host, room.id, at(3)).await.expect("close");
    assert_eq!(closed.closed_at, Some(at(3)));
    assert!(!closed.is_active());
    let again = stores.rooms.close(host, room.id, at(9)).await.expect("close again");
    assert_eq!(again.closed_at, Some(at(3)));
    assert_eq!(stores.rooms.get(room.id).await.expect("get"), closed);
}

pub async fn room_list_active_newest_first_without_closed(stores: Stores) {
    let host = user(&stores).await;
    let older = stored(&stores, host, "older", at(1)).await;
    let closed = stored(&stores, host, "closed", at(2)).await;
    let newer = stored(&stores, host, "newer", at(3)).await;
    stores.rooms.close(host, closed.id, at(4)).await.expect("close");

    let listed = stores.rooms.list_active(&page(10)).await.expect("list");

    assert_eq!(listed.items, vec![newer, older]);
    assert_eq!(listed.total, 2);
    assert_eq!(listed.next_cursor, None);
}

pub async fn room_list_pagination_walk(stores: Stores) {
    let host = user(&stores).await;
    let mut expected = Vec::new();
    for i in 0..7 {
        expected.push(stored(&stores, host, &format!("room {i}"), at(i64::from(i) / 2)).await.id);
    }
    expected.sort_by(|a, b| b.cmp(a));

    let mut seen = Vec::new();
    let mut request = page(3);
    loop {
        let listed = stores.rooms.list_active(&request).await.expect("list");
        assert_eq!(listed.total, 7);
        seen.extend(listed.items.iter().map(|s| s.id));
        match listed.next_cursor {
            Some(cursor) => request = PageRequest::new(Some(3), Some(cursor)).expect("page"),
            None => break,
        }
    }

    // Sessions sharing a created_at are ordered by id; ids are v7, so this is newest first.
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 7);
    assert_eq!(seen, expected);
}

pub async fn room_messages_oldest_first_with_cursor(stores: Stores) {
    let host = user(&stores).await;
    let room = stored(&stores, host, "Séance", at(0)).await;
    let mut written = Vec::new();
    for i in 0..5 {
        let message = said(room.id, host, &format!("message {i}"), at(i64::from(i) + 1));
        stores.rooms.add_message(&message).await.expect("add");
        written.push(message);
    }
    let spirit = RoomMessage::spirit(room.id, "Boo".to_owned(), at(10));
    stores.rooms.add_message(&spirit).await.expect("add spirit");
    written.push(spirit);

    let first = stores.rooms.messages(room.id, &page(4)).await.expect("page 1");
    let cursor = first.next_cursor.expect("a second page");
    let second =
        stores.rooms.messages(room.id, &PageRequest::new(Some(4), Some(cursor)).expect("page")).await.expect("page 2");

    assert_eq!((first.total, second.total), (6, 6));
    assert_eq!(first.items, written[..4].to_vec());
    assert_eq!(second.items, written[4..].to_vec());
    assert_eq!(second.next_cursor, None);
    let stored_spirit = &second.items[1];
    assert!(stored_spirit.is_spirit && stored_spirit.user_id.is_none() && stored_spirit.user_name == "Spirit");
}

pub async fn room_recent_is_the_last_n_oldest_first(stores: Stores) {
    let host = user(&stores).await;
    let room = stored(&stores, host, "Séance", at(0)).await;
    let other = stored(&stores, host, "Other", at(0)).await;
    let mut written = Vec::new();
    for i in 0..6 {
        let message = said(room.id, host, &format!("message {i}"), at(i64::from(i) + 1));
        stores.rooms.add_message(&message).await.expect("add");
        written.push(message);
    }
    stores.rooms.add_message(&said(other.id, host, "elsewhere", at(20))).await.expect("add");

    let recent = stores.rooms.recent(room.id, 4).await.expect("recent");

    assert_eq!(recent, written[2..].to_vec());
    assert!(stores.rooms.recent(room.id, 50).await.expect("recent").len() == 6);
}

pub async fn room_closed_refuses_messages(stores: Stores) {
    let host = user(&stores).await;
    let room = stored(&stores, host, "Séance", at(0)).await;
    stores.rooms.add_message(&said(room.id, host, "before", at(1))).await.expect("add");
    stores.rooms.close(host, room.id, at(2)).await.expect("close");

    let refused = stores.rooms.add_message(&said(room.id, host, "after", at(3))).await;

    assert!(matches!(refused, Err(RoomError::Closed)));
    let kept = stores.rooms.messages(room.id, &page(10)).await.expect("messages");
    assert_eq!(kept.total, 1);
}

pub async fn room_messages_racing_a_close_land_before_it_or_not_at_all(stores: Stores) {
    let host = user(&stores).await;
    let room = stored(&stores, host, "Séance", at(0)).await;
    let repo = Arc::clone(&stores.rooms);
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let repo = Arc::clone(&repo);
            let message = said(room.id, host, &format!("m{i}"), crate::stores::now());
            tokio::spawn(async move { repo.add_message(&message).await })
        })
        .collect();
    stores.rooms.close(host, room.id, crate::stores::now()).await.expect("close");

    let mut accepted = 0;
    for writer in writers {
        match writer.await.expect("join") {
            Ok(()) => accepted += 1,
            Err(RoomError::Closed) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let kept = stores.rooms.messages(room.id, &page(100)).await.expect("messages");
    assert_eq!(kept.total, accepted);
    let late = said(room.id, host, "late", crate::stores::now());
    assert!(matches!(stores.rooms.add_message(&late).await, Err(RoomError::Closed)));
}

pub async fn room_count_open_counts_only_the_hosts_open_sessions(stores: Stores) {
    let (host, other) = (user(&stores).await, user(&stores).await);
    assert_eq!(stores.rooms.count_open(host).await.expect("count"), 0);
    stored(&stores, host, "one", at(1)).await;
    let closed = stored(&stores, host, "two", at(2)).await;
    stored(&stores, host, "three", at(3)).await;
    stored(&stores, other, "elsewhere", at(4)).await;

    assert_eq!(stores.rooms.count_open(host).await.expect("count"), 3);
    stores.rooms.close(host, closed.id, at(5)).await.expect("close");

    assert_eq!(stores.rooms.count_open(host).await.expect("count"), 2);
    assert_eq!(stores.rooms.count_open(other).await.expect("count"), 1);
    assert_eq!(stores.rooms.count_open(UserId::new()).await.expect("count"), 0);
}
