//! `/api/v1/chat`: the six chat-to-task journeys through the offline
//! assistant, the same journey through a fake OpenAI-compatible provider,
//! and the conversation endpoints.

use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{TestApp, TestUser};

async fn chat(app: &TestApp, user: &TestUser, message: &str, conversation: Option<&str>) -> Value {
    let mut body = json!({ "message": message });
    if let Some(id) = conversation {
        body["conversation_id"] = json!(id);
    }
    app.post("/api/v1/chat", Some(&user.token), body).await.data(StatusCode::OK).clone()
}

async fn tasks(app: &TestApp, user: &TestUser) -> Vec<Value> {
    app.get("/api/v1/tasks", Some(&user.token)).await.data(StatusCode::OK).as_array().cloned().unwrap_or_default()
}

fn tool_names(reply: &Value) -> Vec<String> {
    reply["message"]["tool_calls"]
        .as_array()
        .map(|calls| calls.iter().filter_map(|c| c["function"]["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn adding_a_task_by_chatting() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let reply = chat(&app, &ada, "add a task to buy milk", None).await;
    assert_eq!(tool_names(&reply), vec!["add_task"]);
    let call = &reply["message"]["tool_calls"][0];
    assert_eq!(call["type"], json!("function"));
    assert_eq!(call["status"], json!("ok"));
    assert!(call["function"]["arguments"].as_str().is_some_and(|a| a.contains("buy milk")));
    assert_eq!(reply["message"]["role"], json!("assistant"));
    assert!(reply["message"]["content"].as_str().is_some_and(|c| c.to_lowercase().contains("buy milk")));
    let stored = tasks(&app, &ada).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["title"].as_str().map(str::to_lowercase).as_deref(), Some("buy milk"));
}

#[tokio::test]
async fn listing_tasks_by_chatting() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    for title in ["Water plants", "Call mum"] {
        app.post("/api/v1/tasks", Some(&ada.token), json!({ "title": title })).await.data(StatusCode::CREATED);
    }
    let reply = chat(&app, &ada, "show my pending tasks", None).await;
    assert_eq!(tool_names(&reply), vec!["list_tasks"]);
    let content = reply["message"]["content"].as_str().unwrap_or_default();
    assert!(content.contains("Water plants") && content.contains("Call mum"), "{content}");
    assert_eq!(reply["message"]["tool_calls"][0]["result"]["count"], json!(2));
}

#[tokio::test]
async fn completing_a_task_by_chatting() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    app.post("/api/v1/tasks", Some(&ada.token), json!({ "title": "Buy milk" })).await.data(StatusCode::CREATED);
    let reply = chat(&app, &ada, "complete buy MILK", None).await;
    assert_eq!(tool_names(&reply), vec!["list_tasks", "complete_task"]);
    let stored = tasks(&app, &ada).await;
    assert_eq!(stored[0]["completed"], json!(true));
    assert!(stored[0]["completed_at"].is_string());
}

#[tokio::test]
async fn renaming_a_task_by_chatting() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    app.post("/api/v1/tasks", Some(&ada.token), json!({ "title": "Buy milk" })).await.data(StatusCode::CREATED);
    let reply = chat(&app, &ada, "rename buy milk to buy oat milk", None).await;
    assert_eq!(tool_names(&reply), vec!["list_tasks", "update_task"]);
    assert_eq!(tasks(&app, &ada).await[0]["title"], json!("buy oat milk"));
}

#[tokio::test]
async fn deleting_a_task_by_chatting_only_touches_the_callers_tasks() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    app.post("/api/v1/tasks", Some(&ada.token), json!({ "title": "Buy milk" })).await.data(StatusCode::CREATED);
    app.post("/api/v1/tasks", Some(&eve.token), json!({ "title": "Buy milk" })).await.data(StatusCode::CREATED);
    let reply = chat(&app, &ada, "delete buy milk", None).await;
    assert_eq!(tool_names(&reply), vec!["list_tasks", "delete_task"]);
    // A deletion waits for approval (ASSISTANT_APPROVAL=destructive, the default).
    assert_eq!(tasks(&app, &ada).await.len(), 1);
    let plan = reply["plan"]["id"].as_str().unwrap_or_default().to_owned();
    app.post(&format!("/api/v1/plans/{plan}/approve"), Some(&ada.token), json!({})).await.data(StatusCode::OK);
    assert!(tasks(&app, &ada).await.is_empty());
    assert_eq!(tasks(&app, &eve).await.len(), 1, "another user's task is never touched");
}

#[tokio::test]
async fn a_tool_on_someone_elses_task_is_an_error_result_not_an_http_error() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let theirs = app.post("/api/v1/tasks", Some(&eve.token), json!({ "title": "Secret" })).await;
    let id = theirs.data(StatusCode::CREATED)["id"].as_str().unwrap_or_default().to_owned();
    let reply = chat(&app, &ada, &format!("delete {id}"), None).await;
    assert_eq!(tool_names(&reply), vec!["delete_task"]);
    assert_eq!(reply["message"]["tool_calls"][0]["status"], json!("error"));
    assert_eq!(reply["message"]["tool_calls"][0]["result"]["error"]["code"], json!("FORBIDDEN"));
    assert_eq!(tasks(&app, &eve).await.len(), 1);
}

#[tokio::test]
async fn conversation_persists_across_messages() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let first = chat(&app, &ada, "add a task called Write report", None).await;
    let id = first["conversation_id"].as_str().unwrap_or_default().to_owned();
    let second = chat(&app, &ada, "list my tasks", Some(&id)).await;
    assert_eq!(second["conversation_id"], json!(id));

    let conversation = app.get(&format!("/api/v1/chat/conversations/{id}"), Some(&ada.token)).await;
    let data = conversation.data(StatusCode::OK);
    assert_eq!(data["title"], json!("add a task called Write report"));
    let roles: Vec<&str> =
        data["messages"].as_array().map(|m| m.iter().filter_map(|m| m["role"].as_str()).collect()).unwrap_or_default();
    assert_eq!(roles, vec!["user", "assistant", "user", "assistant"]);
    assert_eq!(data["messages"][0]["content"], json!("add a task called Write report"));
    assert_eq!(data["messages"][1]["tool_calls"][0]["function"]["name"], json!("add_task"));

    let list = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
    assert_eq!(list.data(StatusCode::OK)[0]["message_count"], json!(4));
    assert_eq!(list.body["meta"]["total"], json!(1));
}

#[tokio::test]
async fn chat_validation_and_ownership() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let post = |body: Value, token: String| {
        let app = &app;
        async move { app.post("/api/v1/chat", Some(&token), body).await }
    };
    post(json!({"message": "   "}), ada.token.clone()).await.assert_error(StatusCode::BAD_REQUEST, "EMPTY_MESSAGE");
    post(json!({"message": "x".repeat(2001)}), ada.token.clone())
        .await
        .assert_error(StatusCode::BAD_REQUEST, "MESSAGE_TOO_LONG");
    let bad_id = post(json!({"message": "hi", "conversation_id": "nope"}), ada.token.clone()).await;
    bad_id.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(bad_id.bad_fields(), vec!["conversation_id"]);
    let unknown = uuid::Uuid::now_v7().to_string();
    post(json!({"message": "hi", "conversation_id": unknown}), ada.token.clone())
        .await
        .assert_error(StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
    let mine = chat(&app, &ada, "hello", None).await["conversation_id"].as_str().unwrap_or_default().to_owned();
    post(json!({"message": "hi", "conversation_id": mine}), eve.token.clone())
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.get(&format!("/api/v1/chat/conversations/{mine}"), Some(&eve.token))
        .await
        .assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.get("/api/v1/chat/conversations/not-a-uuid", Some(&ada.token))
        .await
        .assert_error(StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
    app.post("/api/v1/chat", None, json!({"message": "hi"}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let list = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
    assert_eq!(list.body["meta"]["total"], json!(1), "refused requests stored nothing");
}

#[tokio::test]
async fn deleting_a_conversation_takes_its_messages_but_not_its_tasks() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let id = chat(&app, &ada, "add a task to water plants", None).await["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let path = format!("/api/v1/chat/conversations/{id}");
    app.delete(&path, Some(&eve.token)).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(app.delete(&path, Some(&ada.token)).await.data(StatusCode::OK), &json!({"id": id, "deleted": true}));
    app.get(&path, Some(&ada.token)).await.assert_error(StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
    app.delete(&path, Some(&ada.token)).await.assert_error(StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
    assert_eq!(tasks(&app, &ada).await.len(), 1);
}

/// An SSE body in the OpenAI chat.completion.chunk shape.
pub fn sse(chunks: &[Value]) -> String {
    let mut body: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}

pub fn tool_call_chunk(id: &str, name: &str, arguments: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": id, "type": "function", "function": {"name": name, "arguments": arguments}}
    ]}}]})
}

pub fn text_chunk(text: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {"content": text}}]})
}

/// A fake provider: the first request asks for add_task, every later one answers text.
pub async fn fake_provider() -> MockServer {
    let server = MockServer::start().await;
    let first = sse(&[
        tool_call_chunk("call_a", "add_task", "{\"title\":"),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\"Fake milk\"}"}}]}, "finish_reason": "tool_calls"}]}),
    ]);
    let second = sse(&[text_chunk("Added "), text_chunk("Fake milk.")]);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(first, "text/event-stream"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(second, "text/event-stream"))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn the_same_journey_through_an_openai_compatible_provider() {
    let provider = fake_provider().await;
    let base = format!("{}/v1", provider.uri());
    let app =
        TestApp::spawn_with(&[("LLM_BASE_URL", &base), ("LLM_API_KEY", "sk-test"), ("LLM_MODEL", "test-model")]).await;
    let ada = app.register("Ada").await;
    let reply = chat(&app, &ada, "please add fake milk", None).await;
    assert_eq!(tool_names(&reply), vec!["add_task"]);
    assert_eq!(reply["message"]["content"], json!("Added Fake milk."));
    assert_eq!(tasks(&app, &ada).await[0]["title"], json!("Fake milk"));

    let requests = provider.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 2);
    let first: Value = serde_json::from_slice(&requests[0].body).unwrap_or_default();
    assert_eq!(first["model"], json!("test-model"));
    assert_eq!(first["stream"], json!(true));
    assert_eq!(first["tools"].as_array().map(Vec::len), Some(5));
    assert_eq!(
        requests[0].headers.get("authorization").map(|v| v.as_bytes().to_vec()),
        Some(b"Bearer sk-test".to_vec())
    );
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap_or_default();
    let last = second["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or_default();
    assert_eq!(last["role"], json!("tool"));
    // The result answers the call Parley echoed back, under Parley's own id for it.
    let messages = second["messages"].as_array().cloned().unwrap_or_default();
    let echoed = &messages[messages.len() - 2]["tool_calls"][0]["id"];
    assert_eq!(&last["tool_call_id"], echoed);
    assert!(echoed.as_str().is_some_and(|id| id.starts_with("call_") && id != "call_a"), "{echoed}");
}

#[tokio::test]
async fn a_failing_provider_is_502_and_the_users_message_is_kept() {
    let provider = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&provider).await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &base)]).await;
    let ada = app.register("Ada").await;
    app.post("/api/v1/chat", Some(&ada.token), json!({"message": "add a task to test"}))
        .await
        .assert_error(StatusCode::BAD_GATEWAY, "LLM_UNAVAILABLE");
    let list = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
    assert_eq!(list.data(StatusCode::OK)[0]["message_count"], json!(1));
}

#[tokio::test]
async fn a_conversation_read_returns_its_recent_messages_and_the_history_pages() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_PER_MINUTE", "1000")]).await;
    let user = app.register("Ann").await;
    let first = app.post("/api/v1/chat", Some(&user.token), json!({"message": "list my tasks"})).await;
    let id = first.data(StatusCode::OK)["conversation_id"].as_str().unwrap().to_owned();
    for n in 0..50 {
        let reply = app
            .post(
                "/api/v1/chat",
                Some(&user.token),
                json!({"message": format!("list my tasks {n}"), "conversation_id": id}),
            )
            .await;
        reply.data(StatusCode::OK);
    }
    // 51 turns: 102 messages.
    for path in [format!("/api/v1/chat/conversations/{id}"), format!("/api/v1/chatkit/sessions/{id}")] {
        let detail = app.get(&path, Some(&user.token)).await;
        let data = detail.data(StatusCode::OK);
        let messages = data["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 100, "{path}");
        assert_eq!(data["has_more_messages"], json!(true), "{path}");
        assert_eq!(messages[0]["content"], json!("list my tasks 0"), "the two oldest are left out: {path}");
    }
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.as_ref().map_or_else(String::new, |c| format!("&cursor={c}"));
        let page =
            app.get(&format!("/api/v1/chat/conversations/{id}/messages?limit=40{query}"), Some(&user.token)).await;
        let items = page.data(StatusCode::OK).as_array().unwrap().clone();
        if seen == 0 {
            assert_eq!(items[0]["content"], json!("list my tasks"), "oldest first");
        }
        seen += items.len();
        assert_eq!(page.body["meta"]["total"], json!(102));
        match page.body["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 102);
    let other = app.register("Bob").await;
    let foreign = app.get(&format!("/api/v1/chat/conversations/{id}/messages"), Some(&other.token)).await;
    foreign.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
}
