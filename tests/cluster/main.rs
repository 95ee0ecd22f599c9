//! Several instances on one PostgreSQL database and one Redis: real servers
//! on real ports (in this process, or the real binary when a test kills
//! one), real WebSocket and HTTP clients. Each test has its own database and
//! Redis key prefix; the outage test runs a private `redis-server`, never
//! stopping the shared one.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Instance, PrivateRedis, ServerProcess, Socket, Users};
use parley_tests::{TestDatabase, TestRedis};

/// A client on A hears what a client on B says, with the same ids in the same order.
#[tokio::test]
async fn what_is_said_on_b_reaches_a_with_the_same_ids_in_the_same_order() {
    let (database, redis) = (TestDatabase::create().await, TestRedis::create());
    let a = Instance::start(&database, &redis, &[]).await;
    let b = Instance::start(&database, &redis, &[]).await;
    let users = Users::register(&a, 2).await;
    let room = a.create_room(&users[0], 5).await;

    let (mut on_a, _) = Socket::join(&a, &room, &users[0]).await;
    let (mut on_b, joined) = Socket::join(&b, &room, &users[1]).await;
    assert_eq!(joined["session"]["participant_count"], json!(2), "{joined}");
    let seen = on_a.expect("user_joined").await;
    assert_eq!(seen["user_id"], json!(users[1].id));

    for n in 0..5 {
        on_b.send("send_message", json!({"message": format!("knock {n}")})).await;
    }
    let (mut heard_on_a, mut heard_on_b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        heard_on_a.push(on_a.expect("message_received").await);
        heard_on_b.push(on_b.expect("message_received").await);
    }
    let ids = |heard: &[Value]| heard.iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let texts: Vec<_> = heard_on_a.iter().map(|m| m["message"].as_str().unwrap().to_owned()).collect();
    assert_eq!(texts, (0..5).map(|n| format!("knock {n}")).collect::<Vec<_>>());
    assert_eq!(ids(&heard_on_a), ids(&heard_on_b));
    let stored = a.get(&format!("/api/v1/sessions/{room}/messages?limit=100"), &users[0].token).await;
    let stored: Vec<_> =
        stored["data"].as_array().unwrap().iter().filter(|m| m["is_spirit"] == json!(false)).cloned().collect();
    assert_eq!(ids(&stored), ids(&heard_on_a), "the order everyone heard is the stored order");

    // Typing and leaving cross too; the session's count is the same on both.
    on_b.send("typing", json!({})).await;
    assert_eq!(on_a.expect("user_typing").await["user_id"], json!(users[1].id));
    for instance in [&a, &b] {
        let session = instance.get(&format!("/api/v1/sessions/{room}"), &users[0].token).await;
        assert_eq!(session["data"]["participant_count"], json!(2), "{session}");
    }
    on_b.send("leave", json!({})).await;
    assert_eq!(on_a.expect("user_left").await["user_id"], json!(users[1].id));
}

/// Seven users join a six-seat room at once, over both instances: six are in.
#[tokio::test]
async fn seven_concurrent_joins_over_two_instances_fill_six_seats_exactly() {
    let (database, redis) = (TestDatabase::create().await, TestRedis::create());
    let a = Instance::start(&database, &redis, &[]).await;
    let b = Instance::start(&database, &redis, &[]).await;
    let users = Users::register(&a, 7).await;
    let room = a.create_room(&users[0], 6).await;

    let joins = users.iter().enumerate().map(|(n, user)| {
        let instance = if n % 2 == 0 { a.clone() } else { b.clone() };
        let (room, user) = (room.clone(), user.clone());
        tokio::spawn(async move { Socket::try_join(&instance, &room, &user).await })
    });
    let mut admitted = Vec::new();
    let mut full = 0;
    for join in joins.collect::<Vec<_>>() {
        match join.await.unwrap() {
            Ok(socket) => admitted.push(socket),
            Err((code, close)) => {
                assert_eq!((code.as_str(), close), ("SESSION_FULL", Some(4009)));
                full += 1;
            }
        }
    }
    assert_eq!((admitted.len(), full), (6, 1));
    for instance in [&a, &b] {
        let session = instance.get(&format!("/api/v1/sessions/{room}"), &users[0].token).await;
        assert_eq!(session["data"]["participant_count"], json!(6), "{session}");
    }
}

/// The chat budget is one across instances: 15 on A and 15 on B spend it.
#[tokio::test]
async fn a_budget_spent_half_on_a_and_half_on_b_refuses_the_31st() {
    let (database, redis) = (TestDatabase::create().await, TestRedis::create());
    let a = Instance::start(&database, &redis, &[]).await;
    let b = Instance::start(&database, &redis, &[]).await;
    let user = Users::register(&a, 1).await.remove(0);

    let mut remaining = Vec::new();
    for n in 0..30 {
        let instance = if n % 2 == 0 { &a } else { &b };
        let response = instance.budgeted(&user.token).await;
        assert_eq!(response.status(), StatusCode::OK, "request {n}");
        assert_eq!(response.headers()["ratelimit-limit"], "30");
        remaining.push(response.headers()["ratelimit-remaining"].to_str().unwrap().parse::<u32>().unwrap());
    }
    assert_eq!(remaining, (0..30).rev().collect::<Vec<_>>(), "one budget, counted down on both");
    for instance in [&a, &b] {
        let refused = instance.budgeted(&user.token).await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry_after), "{retry_after}");
        assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    }
    let other = Users::register(&b, 1).await.remove(0);
    assert_eq!(b.budgeted(&other.token).await.status(), StatusCode::OK, "budgets are per user");
}

/// The host closes the session on A: the members on B are told and disconnected.
#[tokio::test]
async fn closing_on_a_disconnects_the_members_on_b() {
    let (database, redis) = (TestDatabase::create().await, TestRedis::create());
    let a = Instance::start(&database, &redis, &[]).await;
    let b = Instance::start(&database, &redis, &[]).await;
    let users = Users::register(&a, 3).await;
    let room = a.create_room(&users[0], 5).await;
    let (mut first, _) = Socket::join(&b, &room, &users[1]).await;
    let (mut second, _) = Socket::join(&b, &room, &users[2]).await;

    let closed = a.post(&format!("/api/v1/sessions/{room}/close"), &users[0].token, json!({})).await;
    assert_eq!(closed.status(), StatusCode::OK);
    for socket in [&mut first, &mut second] {
        socket.until("session_closed").await;
        assert_eq!(socket.closed().await, Some(1000));
    }
    let again = Socket::try_join(&b, &room, &users[1]).await.err();
    assert_eq!(again, Some(("SESSION_CLOSED".to_owned(), Some(4010))));
}

/// An instance killed with SIGKILL renews its seats no more: they free
/// within the lease, and the others hear the user leave.
#[tokio::test]
async fn the_seats_of_a_killed_instance_free_within_the_lease() {
    let (database, redis) = (TestDatabase::create().await, TestRedis::create());
    let lease = [("REDIS_SEAT_LEASE_SECONDS", "2")];
    let a = Instance::start(&database, &redis, &lease).await;
    let doomed = ServerProcess::start(&database, &redis, &lease);
    let users = Users::register(&a, 3).await;
    let room = a.create_room(&users[0], 2).await;
    let (mut stays, _) = Socket::join(&a, &room, &users[0]).await;
    let (_on_doomed, _) = Socket::join(&doomed.instance, &room, &users[1]).await;
    assert_eq!(stays.expect("user_joined").await["user_id"], json!(users[1].id));
    assert_eq!(
        Socket::try_join(&a, &room, &users[2]).await.err(),
        Some(("SESSION_FULL".to_owned(), Some(4009))),
        "two seats, both taken"
    );

    doomed.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    let newcomer = loop {
        match Socket::try_join(&a, &room, &users[2]).await {
            Ok(socket) => break socket,
            Err((code, _)) if code == "SESSION_FULL" && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(other) => panic!("the seat never freed: {other:?}"),
        }
    };
    drop(newcomer);
    let left = stays.until("user_left").await;
    assert_eq!(left["user_id"], json!(users[1].id), "the killed instance's user left");
}

/// Redis stops under two instances and comes back: REST goes on meanwhile,
/// rooms refuse joins with a code, and both recover within 5 s of its return.
#[tokio::test]
async fn a_redis_restart_degrades_rooms_and_they_recover_within_five_seconds() {
    let Some(mut server) = PrivateRedis::start() else { return };
    let database = TestDatabase::create().await;
    let redis = TestRedis::on(&server.url());
    let a = Instance::start(&database, &redis, &[]).await;
    let b = Instance::start(&database, &redis, &[]).await;
    let users = Users::register(&a, 2).await;
    let room = a.create_room(&users[0], 5).await;
    let (mut on_a, _) = Socket::join(&a, &room, &users[0]).await;
    let (_on_b, _) = Socket::join(&b, &room, &users[1]).await;
    on_a.expect("user_joined").await;
    assert_eq!(a.ready().await, (StatusCode::OK, json!("connected")));

    server.stop();
    assert_eq!(on_a.closed().await, Some(1011), "a room that cannot deliver ends its connections");
    assert_eq!(a.ready().await, (StatusCode::SERVICE_UNAVAILABLE, json!("unreachable")));
    let refused = Socket::try_join(&b, &room, &users[1]).await.err();
    assert_eq!(refused, Some(("DATABASE_UNAVAILABLE".to_owned(), Some(1011))));
    // REST goes on: the budget falls back to each instance's own, sessions read.
    assert_eq!(a.budgeted(&users[0].token).await.status(), StatusCode::OK);
    let session = b.get(&format!("/api/v1/sessions/{room}"), &users[1].token).await;
    assert_eq!(session["data"]["id"], json!(room), "{session}");

    server.start_again();
    let back = Instant::now();
    let (mut on_a, mut on_b) = loop {
        let joined = (Socket::try_join(&a, &room, &users[0]).await, Socket::try_join(&b, &room, &users[1]).await);
        match joined {
            (Ok(on_a), Ok(on_b)) => break (on_a, on_b),
            _ => {
                assert!(back.elapsed() < Duration::from_secs(5), "rooms did not recover within 5 s");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    on_b.send("send_message", json!({"message": "still here"})).await;
    assert_eq!(on_a.until("message_received").await["message"], json!("still here"));
    assert_eq!(a.ready().await, (StatusCode::OK, json!("connected")));
    assert_eq!(b.budgeted(&users[1].token).await.status(), StatusCode::OK);
    assert!(back.elapsed() < Duration::from_secs(5), "recovered, but later than 5 s");
}

/// Members on both instances talk over each other: the spirit answers one
/// reply at a time for the whole room, folding what was said meanwhile.
#[tokio::test]
async fn one_spirit_reply_at_a_time_per_room_across_instances() {
    let (database, redis) = (TestDatabase::create().await, TestRedis::create());
    let a = Instance::start(&database, &redis, &[]).await;
    let b = Instance::start(&database, &redis, &[]).await;
    let users = Users::register(&a, 3).await;
    let room = a.create_room(&users[0], 5).await;
    let (mut watcher, _) = Socket::join(&a, &room, &users[0]).await;
    let (mut on_a, _) = Socket::join(&a, &room, &users[1]).await;
    let (mut on_b, _) = Socket::join(&b, &room, &users[2]).await;
    for n in 0..3 {
        on_a.send("send_message", json!({"message": format!("from A {n}")})).await;
        on_b.send("send_message", json!({"message": format!("from B {n}")})).await;
    }

    let (mut said, mut answered, mut thinking) = (Vec::new(), Vec::new(), false);
    while said.len() < 6 || answered.len() < said.len() {
        match watcher.next().await {
            crate::support::Seen::Event(event, data) => match event.as_str() {
                "message_received" => said.push(data["id"].as_str().unwrap().to_owned()),
                "spirit_thinking" => {
                    assert!(!thinking, "a second reply started while one was in flight");
                    thinking = true;
                }
                "spirit_response" => {
                    assert!(thinking, "a reply without thinking first");
                    thinking = false;
                    for id in data["in_reply_to"].as_array().unwrap() {
                        let id = id.as_str().unwrap().to_owned();
                        assert!(!answered.contains(&id), "{id} was answered twice");
                        answered.push(id);
                    }
                }
                _ => {}
            },
            crate::support::Seen::Closed(code) => panic!("closed: {code:?}"),
        }
    }
    answered.sort();
    said.sort();
    assert_eq!(answered, said, "every message answered once");
}
