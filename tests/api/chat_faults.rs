//! `/api/v1/chat` against a misbehaving or over-eager provider: the limits of
//! a reply, and each provider fault answered `502 LLM_UNAVAILABLE` with
//! nothing stored lost and what the reply produced kept.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::chat::{fake_provider, sse, text_chunk, tool_call_chunk};
use crate::provider::FakeProvider;
use crate::support::{Reply, TestApp, TestUser};

async fn app_with(provider: &str, extra: &[(&str, &str)]) -> TestApp {
    let mut overrides = vec![("LLM_BASE_URL", provider)];
    overrides.extend_from_slice(extra);
    TestApp::spawn_with(&overrides).await
}

fn base(server: &MockServer) -> String {
    format!("{}/v1", server.uri())
}

/// Answers the first request with `first`, every later one with `then`.
async fn provider(first: ResponseTemplate, then: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(first).up_to_n_times(1).with_priority(1).mount(&server).await;
    Mock::given(method("POST")).respond_with(then).mount(&server).await;
    server
}

fn events(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

/// Posts a message; the test fails instead of hanging if no answer comes.
async fn say(app: &TestApp, user: &TestUser, message: &str) -> Reply {
    let request = app.post("/api/v1/chat", Some(&user.token), json!({ "message": message }));
    tokio::time::timeout(Duration::from_secs(30), request).await.expect("the chat request is answered")
}

/// A 502 and the stored conversation it names: `(user message, assistant reply)`.
async fn failed_and_stored(app: &TestApp, user: &TestUser, reply: &Reply) -> Vec<Value> {
    reply.assert_error(StatusCode::BAD_GATEWAY, "LLM_UNAVAILABLE");
    let id = reply.body["error"]["details"]["conversation_id"].as_str().expect("the 502 names the conversation");
    let conversation = app.get(&format!("/api/v1/chat/conversations/{id}"), Some(&user.token)).await;
    conversation.data(StatusCode::OK)["messages"].as_array().cloned().unwrap_or_default()
}

async fn task_count(app: &TestApp, user: &TestUser) -> Value {
    app.get("/api/v1/tasks", Some(&user.token)).await.body["meta"]["total"].clone()
}

fn two_calls_chunk() -> Value {
    json!({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "add_task", "arguments": "{\"title\":\"One\"}"}},
        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "add_task", "arguments": "{\"title\":\"Two\"}"}}
    ]}, "finish_reason": "tool_calls"}]})
}

#[tokio::test]
async fn chat_tool_calls_past_the_limit_are_answered_as_errors_and_not_run() {
    let server = provider(events(sse(&[two_calls_chunk()])), events(sse(&[text_chunk("Added one.")]))).await;
    let app = app_with(&base(&server), &[("LLM_MAX_TOOL_CALLS", "1")]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "add two tasks").await;

    let message = &reply.data(StatusCode::OK)["message"];
    assert_eq!(message["content"], json!("Added one."));
    assert_eq!(message["tool_calls"][0]["status"], json!("ok"));
    assert_eq!(message["tool_calls"][1]["status"], json!("error"));
    assert_eq!(message["tool_calls"][1]["result"]["error"]["code"], json!("TOOL_CALL_LIMIT"));
    assert_eq!(task_count(&app, &ada).await, json!(1), "the refused call did not run");
}

#[tokio::test]
async fn chat_every_provider_request_asks_for_at_most_llm_max_tokens() {
    let server = fake_provider().await;
    let app = app_with(&base(&server), &[("LLM_MAX_TOKENS", "77")]).await;
    let ada = app.register("Ada").await;

    say(&app, &ada, "please add fake milk").await.data(StatusCode::OK);

    let requests = server.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 2);
    for request in requests {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or_default();
        assert_eq!(body["max_tokens"], json!(77));
    }
}

#[tokio::test]
async fn chat_a_reply_past_8000_characters_is_cut_there_stored_and_502() {
    let chunks: Vec<Value> = (0..9).map(|_| text_chunk(&"a".repeat(1000))).collect();
    let server = provider(events(sse(&chunks)), ResponseTemplate::new(500)).await;
    let app = app_with(&base(&server), &[]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "write me a novel").await;

    let messages = failed_and_stored(&app, &ada, &reply).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["content"].as_str().map(str::len), Some(8000));
}

#[tokio::test]
async fn chat_tool_arguments_over_4_kib_are_not_run_and_the_reply_is_502() {
    let arguments = json!({ "title": "x".repeat(5000) }).to_string();
    let server =
        provider(events(sse(&[tool_call_chunk("big", "add_task", &arguments)])), ResponseTemplate::new(500)).await;
    let app = app_with(&base(&server), &[]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "add a big task").await;

    let messages = failed_and_stored(&app, &ada, &reply).await;
    let call = &messages[1]["tool_calls"][0];
    assert_eq!(call["status"], json!("error"));
    assert_eq!(call["result"]["error"]["code"], json!("ARGUMENTS_TOO_LONG"));
    assert_eq!(call["function"]["arguments"].as_str().map(str::len), Some(4096));
    assert_eq!(task_count(&app, &ada).await, json!(0));
}

/// The provider sends a delta every 200 ms, well inside the per-gap timeout,
/// and never finishes: only the whole-reply deadline can end it.
#[tokio::test]
async fn chat_the_reply_deadline_ends_a_provider_that_trickles_forever() {
    let provider = FakeProvider::trickling(Duration::from_millis(200)).await;
    let app = app_with(&provider.base_url, &[("LLM_REPLY_TIMEOUT_SECONDS", "1")]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "hello").await;

    let messages = failed_and_stored(&app, &ada, &reply).await;
    assert_eq!(messages.len(), 2);
    assert!(messages[1]["content"].as_str().is_some_and(|c| c.starts_with("tick ")), "{}", messages[1]);
}

#[tokio::test]
async fn chat_a_provider_5xx_after_a_tool_round_keeps_the_tool_call() {
    let first = sse(&[tool_call_chunk("call_a", "add_task", "{\"title\":\"Kept\"}")]);
    let server = provider(events(first), ResponseTemplate::new(503)).await;
    let app = app_with(&base(&server), &[]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "add a task called Kept").await;

    let messages = failed_and_stored(&app, &ada, &reply).await;
    assert_eq!(messages[1]["tool_calls"][0]["function"]["name"], json!("add_task"));
    assert_eq!(messages[1]["tool_calls"][0]["status"], json!("ok"));
    assert_eq!(task_count(&app, &ada).await, json!(1));
}

#[tokio::test]
async fn chat_a_429_is_502_and_not_retried_before_its_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .mount(&server)
        .await;
    let app = app_with(&base(&server), &[]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "hello").await;

    let messages = failed_and_stored(&app, &ada, &reply).await;
    assert_eq!(messages.len(), 1, "the user's message is kept, no reply was produced");
    assert_eq!(server.received_requests().await.unwrap_or_default().len(), 1);
}

#[tokio::test]
async fn chat_a_connection_reset_mid_stream_keeps_the_text_so_far() {
    let provider = FakeProvider::resetting().await;
    let app = app_with(&provider.base_url, &[]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "hello").await;

    let messages = failed_and_stored(&app, &ada, &reply).await;
    assert_eq!(messages[1]["content"], json!("Hel"));
}

#[tokio::test]
async fn chat_a_malformed_chunk_keeps_the_text_so_far() {
    let body = format!("data: {}\n\ndata: {{\"choices\": [oops\n\n", text_chunk("Hal"));
    let server = provider(events(body), ResponseTemplate::new(500)).await;
    let app = app_with(&base(&server), &[]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "hello").await;

    let messages = failed_and_stored(&app, &ada, &reply).await;
    assert_eq!(messages[1]["content"], json!("Hal"));
}

#[tokio::test]
async fn chat_a_stream_that_ends_without_done_keeps_its_text_and_runs_no_tool() {
    let body = format!(
        "data: {}\n\ndata: {}\n\n",
        text_chunk("Half"),
        tool_call_chunk("call_a", "add_task", "{\"title\":\"Never\"}")
    );
    let server = provider(events(body), ResponseTemplate::new(500)).await;
    let app = app_with(&base(&server), &[]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "hello").await;

    let messages = failed_and_stored(&app, &ada, &reply).await;
    assert_eq!(messages[1]["content"], json!("Half"));
    assert_eq!(messages[1]["tool_calls"], json!([]));
    assert_eq!(task_count(&app, &ada).await, json!(0));
}

#[tokio::test]
async fn chat_tool_arguments_that_are_not_json_are_an_error_result_the_model_sees() {
    let first = sse(&[tool_call_chunk("call_a", "add_task", "{\"title\": \"Buy")]);
    let server = provider(events(first), events(sse(&[text_chunk("Sorry, try again.")]))).await;
    let app = app_with(&base(&server), &[]).await;
    let ada = app.register("Ada").await;

    let reply = say(&app, &ada, "add a task to buy").await;

    let message = &reply.data(StatusCode::OK)["message"];
    assert_eq!(message["tool_calls"][0]["status"], json!("error"));
    assert_eq!(message["tool_calls"][0]["result"]["error"]["code"], json!("INVALID_ARGUMENTS"));
    assert_eq!(message["tool_calls"][0]["function"]["arguments"], json!("{\"title\": \"Buy"));
    assert_eq!(task_count(&app, &ada).await, json!(0));
    let requests = server.received_requests().await.unwrap_or_default();
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap_or_default();
    let replayed = second["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == json!("assistant")))
        .map(|m| m["tool_calls"][0]["function"]["arguments"].clone());
    assert_eq!(replayed, Some(json!("{}")), "strict providers get JSON back");
}
