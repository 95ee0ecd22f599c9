//! ChatKit REST: every case of the original report, with a real SSE reader.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser};

pub async fn session(app: &TestApp, user: &TestUser) -> String {
    let reply = app.post("/api/v1/chatkit/sessions", Some(&user.token), json!({})).await;
    reply.data(StatusCode::CREATED)["id"].as_str().unwrap_or_default().to_owned()
}

/// Posts a message and reads the whole event stream: `(event, data)` pairs.
pub async fn stream(app: &TestApp, user: &TestUser, id: &str, text: &str) -> Vec<(String, String)> {
    let response = app
        .client
        .post(format!("{}/api/v1/chatkit/sessions/{id}/messages", app.address))
        .bearer_auth(&user.token)
        .json(&json!({ "text": text }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let events = response.bytes_stream().eventsource().map(|e| e.map(|e| (e.event, e.data)));
    let collected =
        tokio::time::timeout(Duration::from_secs(20), events.collect::<Vec<_>>()).await.expect("the stream ends");
    collected.into_iter().map(|e| e.expect("well-formed SSE")).collect()
}

fn data(event: &(String, String)) -> Value {
    serde_json::from_str(&event.1).unwrap_or(Value::Null)
}

#[tokio::test]
async fn creating_a_session() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let reply = app.post("/api/v1/chatkit/sessions", Some(&ada.token), json!({})).await;
    let data = reply.data(StatusCode::CREATED).clone();
    let id = data["id"].as_str().unwrap_or_default();
    assert!(uuid::Uuid::parse_str(id).is_ok());
    assert_eq!(data["user_id"], json!(ada.id));
    assert_eq!(data["thread_id"], json!(id));
    assert!(data["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let persisted = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
    assert_eq!(persisted.data(StatusCode::OK)["messages"], json!([]));
    app.post("/api/v1/chatkit/sessions", None, json!({})).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn threads_are_the_session_and_idempotent() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let id = session(&app, &ada).await;
    let path = format!("/api/v1/chatkit/sessions/{id}/threads");
    let first = app.post(&path, Some(&ada.token), json!({})).await.data(StatusCode::OK).clone();
    assert_eq!(first, json!({"session_id": id, "thread_id": id}));
    let again = app.post(&path, Some(&ada.token), json!({})).await;
    assert_eq!(again.data(StatusCode::OK), &first);
    app.post(&path, Some(&eve.token), json!({})).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let unknown = format!("/api/v1/chatkit/sessions/{}/threads", uuid::Uuid::now_v7());
    app.post(&unknown, Some(&ada.token), json!({})).await.assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
}

#[tokio::test]
async fn a_message_streams_the_contracts_events_in_order() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let id = session(&app, &ada).await;
    let events = stream(&app, &ada, &id, "add a task to feed the cat").await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names.first(), Some(&"message.created"));
    assert_eq!(names.last(), Some(&"done"));
    assert_eq!(events.last().map(|(_, d)| d.as_str()), Some("[DONE]"));
    assert_eq!(names[names.len() - 2], "message.completed");
    assert!(names.contains(&"tool.call"));
    assert!(names.iter().filter(|n| **n == "assistant.delta").count() >= 2, "text streams in pieces: {names:?}");

    let created = data(&events[0]);
    assert_eq!(created["message"]["role"], json!("user"));
    assert_eq!(created["message"]["content"], json!("add a task to feed the cat"));
    let call = events.iter().find(|(e, _)| e == "tool.call").map(data).unwrap_or_default();
    assert_eq!(call["tool_call"]["function"]["name"], json!("add_task"));
    assert_eq!(call["tool_call"]["status"], json!("ok"));
    let deltas: String = events
        .iter()
        .filter(|(e, _)| e == "assistant.delta")
        .map(|e| data(e)["delta"].as_str().unwrap_or_default().to_owned())
        .collect();
    let completed = data(&events[names.len() - 2]);
    assert_eq!(completed["message"]["content"], json!(deltas));
    assert_eq!(completed["message"]["tool_calls"][0]["function"]["name"], json!("add_task"));

    let stored = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
    let messages = stored.data(StatusCode::OK)["messages"].clone();
    assert_eq!(messages[0]["id"], created["message"]["id"]);
    assert_eq!(messages[1]["id"], completed["message"]["id"]);
    assert_eq!(messages[1]["tool_calls"][0]["function"]["name"], json!("add_task"));
}

#[tokio::test]
async fn message_errors_are_answered_before_the_stream() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let id = session(&app, &ada).await;
    let path = format!("/api/v1/chatkit/sessions/{id}/messages");
    app.post(&path, Some(&ada.token), json!({"text": " \n "}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "EMPTY_MESSAGE");
    app.post(&path, Some(&ada.token), json!({"text": "y".repeat(2001)}))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "MESSAGE_TOO_LONG");
    app.post(&path, Some(&eve.token), json!({"text": "hi"})).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let unknown = format!("/api/v1/chatkit/sessions/{}/messages", uuid::Uuid::now_v7());
    app.post(&unknown, Some(&ada.token), json!({"text": "hi"}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    app.post("/api/v1/chatkit/sessions/garbage/messages", Some(&ada.token), json!({"text": "hi"}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    let stored = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
    assert_eq!(stored.data(StatusCode::OK)["messages"], json!([]), "refused messages are not stored");
}

#[tokio::test]
async fn listing_is_per_user_most_recent_first_with_counts() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let empty = app.get("/api/v1/chatkit/sessions", Some(&ada.token)).await;
    assert_eq!(empty.data(StatusCode::OK), &json!([]));
    assert_eq!(empty.body["meta"]["next_cursor"], Value::Null);
    let older = session(&app, &ada).await;
    let newer = session(&app, &ada).await;
    session(&app, &eve).await;
    stream(&app, &ada, &older, "list my tasks").await;
    let list = app.get("/api/v1/chatkit/sessions", Some(&ada.token)).await;
    let items = list.data(StatusCode::OK).as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = items.iter().filter_map(|s| s["id"].as_str()).collect();
    assert_eq!(ids, vec![older.as_str(), newer.as_str()], "the session just used comes first");
    assert_eq!(items[0]["message_count"], json!(2));
    assert_eq!(items[1]["message_count"], json!(0));
    assert_eq!(list.body["meta"]["total"], json!(2));
    let through_chat = app.get(&format!("/api/v1/chat/conversations/{older}"), Some(&ada.token)).await;
    assert_eq!(
        through_chat.data(StatusCode::OK)["messages"].as_array().map(Vec::len),
        Some(2),
        "one conversation, two views"
    );
}

#[tokio::test]
async fn retrieval_and_deletion() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let id = session(&app, &ada).await;
    stream(&app, &ada, &id, "add a task to test deletion").await;
    let path = format!("/api/v1/chatkit/sessions/{id}");
    app.get(&path, Some(&eve.token)).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.delete(&path, Some(&eve.token)).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let unknown = format!("/api/v1/chatkit/sessions/{}", uuid::Uuid::now_v7());
    app.get(&unknown, Some(&ada.token)).await.assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    app.delete(&unknown, Some(&ada.token)).await.assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    assert_eq!(app.delete(&path, Some(&ada.token)).await.data(StatusCode::OK), &json!({"id": id, "deleted": true}));
    app.get(&path, Some(&ada.token)).await.assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    let list = app.get("/api/v1/chatkit/sessions", Some(&ada.token)).await;
    assert_eq!(list.data(StatusCode::OK), &json!([]));
    let tasks = app.get("/api/v1/tasks", Some(&ada.token)).await;
    assert_eq!(tasks.body["meta"]["total"], json!(1), "tasks made by the session stay");
}

/// A session is a conversation under a second path: deleted through either,
/// it is gone from both (the fuzzer's inferred links do exactly this).
#[tokio::test]
async fn a_session_deleted_as_a_conversation_is_gone_under_both_paths() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let id = session(&app, &ada).await;
    let conversation = format!("/api/v1/chat/conversations/{id}");
    assert_eq!(app.get(&conversation, Some(&ada.token)).await.data(StatusCode::OK)["id"], json!(id));
    app.delete(&conversation, Some(&ada.token)).await.data(StatusCode::OK);
    for path in [format!("/api/v1/chatkit/sessions/{id}"), format!("/api/v1/chatkit/sessions/{id}/threads")] {
        let reply = if path.ends_with("threads") {
            app.post(&path, Some(&ada.token), json!({})).await
        } else {
            app.get(&path, Some(&ada.token)).await
        };
        reply.assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    }
    let again = session(&app, &ada).await;
    app.delete(&format!("/api/v1/chatkit/sessions/{again}"), Some(&ada.token)).await.data(StatusCode::OK);
    let gone = app.get(&format!("/api/v1/chat/conversations/{again}"), Some(&ada.token)).await;
    gone.assert_error(StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
}

#[tokio::test]
async fn rate_limit_is_per_user_across_chat_and_chatkit() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_PER_MINUTE", "3")]).await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let first = app.post("/api/v1/chatkit/sessions", Some(&ada.token), json!({})).await;
    assert_eq!(first.headers.get("ratelimit-limit").map(|v| v.as_bytes().to_vec()), Some(b"3".to_vec()));
    assert_eq!(first.headers.get("ratelimit-remaining").map(|v| v.as_bytes().to_vec()), Some(b"2".to_vec()));
    assert!(first.headers.contains_key("ratelimit-reset"));
    app.post("/api/v1/chat", Some(&ada.token), json!({"message": "hello"})).await.data(StatusCode::OK);
    app.get("/api/v1/chatkit/sessions", Some(&ada.token)).await.data(StatusCode::OK);
    let limited = app.post("/api/v1/chatkit/sessions", Some(&ada.token), json!({})).await;
    limited.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let retry: u64 =
        limited.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    app.post("/api/v1/chatkit/sessions", Some(&eve.token), json!({})).await.data(StatusCode::CREATED);
    app.get("/api/v1/tasks", Some(&ada.token)).await.data(StatusCode::OK);
    let sessions = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
    assert_eq!(sessions.body["meta"]["total"], json!(2), "the refused create stored nothing");
}

#[tokio::test]
async fn the_reply_is_stored_even_if_the_client_disconnects() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let id = session(&app, &ada).await;
    let response = app
        .client
        .post(format!("{}/api/v1/chatkit/sessions/{id}/messages", app.address))
        .bearer_auth(&ada.token)
        .json(&json!({ "text": "add a task to survive a disconnect" }))
        .send()
        .await
        .expect("the server answers");
    drop(response);
    let mut count = 0;
    for _ in 0..100 {
        let stored = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
        count = stored.body["data"]["messages"].as_array().map_or(0, Vec::len);
        if count == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count, 2);
}

#[tokio::test]
async fn a_provider_failure_mid_stream_ends_with_an_error_event() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let provider = MockServer::start().await;
    let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {not json\n\n";
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&provider)
        .await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &base)]).await;
    let ada = app.register("Ada").await;
    let id = session(&app, &ada).await;
    let events = stream(&app, &ada, &id, "hello").await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, vec!["message.created", "assistant.delta", "error"]);
    assert_eq!(data(&events[2])["code"], json!("LLM_UNAVAILABLE"));
    let stored = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
    let messages = stored.data(StatusCode::OK)["messages"].clone();
    assert_eq!(messages[0]["content"], json!("hello"), "the user's message is kept");
    assert_eq!(messages[1]["content"], json!("Hel"), "so is the reply as far as it went");
}
