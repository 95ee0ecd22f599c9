//! ChatKit REST replies that cannot finish: the whole-reply deadline (with the
//! client listening, or gone) and the server shutting down. Each ends with an
//! `error` event and stores the reply as far as it went.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::provider::FakeProvider;
use crate::support::{TestApp, TestUser};

async fn session(app: &TestApp, user: &TestUser) -> String {
    let reply = app.post("/api/v1/chatkit/sessions", Some(&user.token), json!({})).await;
    reply.data(StatusCode::CREATED)["id"].as_str().unwrap_or_default().to_owned()
}

async fn post_message(app: &TestApp, user: &TestUser, id: &str) -> reqwest::Response {
    let response = app
        .client
        .post(format!("{}/api/v1/chatkit/sessions/{id}/messages", app.address))
        .bearer_auth(&user.token)
        .json(&json!({ "text": "hello" }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    response
}

type Events = futures_util::stream::BoxStream<'static, (String, String)>;

fn events(response: reqwest::Response) -> Events {
    response.bytes_stream().eventsource().map(|e| e.map(|e| (e.event, e.data)).expect("well-formed SSE")).boxed()
}

/// The next event; the test fails instead of hanging when none comes.
async fn next(events: &mut Events) -> Option<(String, String)> {
    tokio::time::timeout(Duration::from_secs(20), events.next()).await.expect("the stream moves on")
}

/// Reads up to the end of the stream: the events' names and the last event's
/// data. The test fails instead of reading forever when the stream never ends.
async fn rest(events: &mut Events) -> (Vec<String>, Value) {
    let read = async {
        let mut names = Vec::new();
        let mut last = Value::Null;
        while let Some((name, data)) = next(events).await {
            names.push(name);
            last = serde_json::from_str(&data).unwrap_or(Value::Null);
        }
        (names, last)
    };
    tokio::time::timeout(Duration::from_secs(30), read).await.expect("the stream ends")
}

fn assistant_content(messages: &Value) -> &str {
    messages[1]["content"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn chatkit_a_reply_past_its_deadline_ends_with_an_error_event_and_is_stored() {
    let provider = FakeProvider::trickling(Duration::from_millis(200)).await;
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &provider.base_url), ("LLM_REPLY_TIMEOUT_SECONDS", "1")]).await;
    let ada = app.register("Ada").await;
    let id = session(&app, &ada).await;

    let mut stream = events(post_message(&app, &ada, &id).await);
    let (names, last) = rest(&mut stream).await;

    assert_eq!(names.first().map(String::as_str), Some("message.created"));
    assert!(names.iter().any(|n| n == "assistant.delta"), "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("error"));
    assert_eq!(last["code"], json!("LLM_UNAVAILABLE"));
    let stored = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
    let messages = stored.data(StatusCode::OK)["messages"].clone();
    assert!(assistant_content(&messages).starts_with("tick "), "{messages}");
}

#[tokio::test]
async fn chatkit_a_reply_whose_client_left_still_ends_at_its_deadline_and_is_stored() {
    let provider = FakeProvider::trickling(Duration::from_millis(200)).await;
    let app = TestApp::spawn_with(&[
        ("LLM_BASE_URL", &provider.base_url),
        ("LLM_REPLY_TIMEOUT_SECONDS", "1"),
        // The polling below must not run out of the per-user budget.
        ("RATE_LIMIT_PER_MINUTE", "1000"),
    ])
    .await;
    let ada = app.register("Ada").await;
    let id = session(&app, &ada).await;

    drop(post_message(&app, &ada, &id).await);

    let mut messages = Value::Null;
    for _ in 0..200 {
        let stored = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
        messages = stored.data(StatusCode::OK)["messages"].clone();
        if messages.as_array().map_or(0, Vec::len) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(messages.as_array().map(Vec::len), Some(2), "{messages}");
    assert!(assistant_content(&messages).starts_with("tick "), "{messages}");
}

/// The server's own shutdown path, in process: draining starts, the reply
/// still streaming ends with `SERVER_SHUTTING_DOWN`, and what it produced is
/// in the store (read directly: the server no longer accepts requests).
#[tokio::test]
async fn chatkit_shutdown_ends_a_streaming_reply_with_server_shutting_down_and_stores_it() {
    let provider = FakeProvider::trickling(Duration::from_millis(100)).await;
    let (app, stop) = TestApp::spawn_stoppable(&[("LLM_BASE_URL", &provider.base_url)]).await;
    let ada = app.register("Ada").await;
    let id = session(&app, &ada).await;
    let mut stream = events(post_message(&app, &ada, &id).await);
    assert_eq!(next(&mut stream).await.map(|e| e.0).as_deref(), Some("message.created"));
    assert_eq!(next(&mut stream).await.map(|e| e.0).as_deref(), Some("assistant.delta"));

    let _ = stop.send(());
    let (names, last) = rest(&mut stream).await;

    assert_eq!(names.last().map(String::as_str), Some("error"), "{names:?}");
    assert_eq!(last["code"], json!("SERVER_SHUTTING_DOWN"));
    assert!(!names.iter().any(|n| n == "done" || n == "message.completed"), "{names:?}");
    let messages = stored_messages(&app, &ada, &id).await;
    assert_eq!(messages.len(), 2);
    assert!(messages[1].content.starts_with("tick "), "{:?}", messages[1]);
}

async fn stored_messages(app: &TestApp, user: &TestUser, id: &str) -> Vec<parley_conversations::Message> {
    let url = app.database_url();
    let conversations = if url.starts_with("sqlite") {
        parley_sqlite::SqliteStore::connect(url, 1).expect("open the SQLite store").conversations()
    } else {
        parley_postgres::PgStore::connect(url, 1).expect("open the PostgreSQL store").conversations()
    };
    let owner = user.id.parse().expect("a user id");
    let id = id.parse().expect("a conversation id");
    conversations.get(owner, id, 1000).await.expect("the conversation is stored").messages
}
