//! `OpenAiLanguageModel` against an OpenAI-compatible server on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use parley_conversations::{ChatTurn, LanguageModel, ModelError, ModelEvent, ToolRequest, ToolSpec};
use parley_llm::{OpenAiConfig, OpenAiLanguageModel};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn model(base_url: &str, api_key: Option<&str>, timeout: Duration) -> OpenAiLanguageModel {
    OpenAiLanguageModel::new(OpenAiConfig {
        base_url: base_url.to_owned(),
        api_key: api_key.map(|key| SecretString::from(key.to_owned())),
        model: "test-model".to_owned(),
        timeout,
        max_tokens: 256,
    })
    .unwrap()
}

fn default_model(server: &MockServer) -> OpenAiLanguageModel {
    model(&format!("{}/v1", server.uri()), Some("sk-test"), Duration::from_secs(5))
}

/// An SSE body: one `data:` event per chunk, then `data: [DONE]`.
fn sse(chunks: &[Value]) -> String {
    let mut body: String = chunks.iter().map(|chunk| format!("data: {chunk}\n\n")).collect();
    body.push_str("data: [DONE]\n\n");
    body
}

fn text_chunk(text: &str) -> Value {
    json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "test-model",
           "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
}

fn finish_chunk(reason: &str) -> Value {
    json!({"choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
}

fn tool_fragment(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> Value {
    let mut call = json!({"index": index, "function": {"arguments": arguments}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(name) = name {
        call["function"]["name"] = json!(name);
    }
    json!({"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]})
}

async fn mount_sse(server: &MockServer, body: String) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(server)
        .await;
}

fn history() -> Vec<ChatTurn> {
    vec![ChatTurn::System("You manage tasks.".to_owned()), ChatTurn::User("add a task to buy milk".to_owned())]
}

fn add_task_tool() -> ToolSpec {
    ToolSpec {
        name: "add_task",
        description: "Add a task",
        parameters: json!({"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}),
    }
}

async fn collect(model: &OpenAiLanguageModel, tools: Vec<ToolSpec>) -> Vec<Result<ModelEvent, ModelError>> {
    model.stream(&history(), tools).await.unwrap().collect().await
}

fn text(s: &str) -> Result<ModelEvent, ModelError> {
    Ok(ModelEvent::TextDelta(s.to_owned()))
}

fn call(id: &str, name: &str, arguments: &str) -> Result<ModelEvent, ModelError> {
    Ok(ModelEvent::ToolCall(ToolRequest { id: id.to_owned(), name: name.to_owned(), arguments: arguments.to_owned() }))
}

#[tokio::test]
async fn streams_text_in_several_deltas() {
    let server = MockServer::start().await;
    let body = sse(&[
        // A role-only first chunk, and chunks without id/object/created/model.
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        text_chunk("Hel"),
        json!({"choices": [{"delta": {"content": "lo"}}]}),
        json!({"choices": [{"delta": {"content": null, "tool_calls": null}}]}),
        text_chunk(" world"),
        finish_chunk("stop"),
    ]);
    mount_sse(&server, body).await;

    let events = collect(&default_model(&server), vec![]).await;
    assert_eq!(events, vec![text("Hel"), text("lo"), text(" world")]);
}

#[tokio::test]
async fn assembles_fragmented_tool_call_arguments() {
    let server = MockServer::start().await;
    let body = sse(&[
        tool_fragment(0, Some("call_1"), Some("add_task"), ""),
        tool_fragment(0, None, None, "{\"ti"),
        tool_fragment(0, None, None, "tle\": \"Buy"),
        tool_fragment(0, None, None, " milk\"}"),
        finish_chunk("tool_calls"),
    ]);
    mount_sse(&server, body).await;

    let events = collect(&default_model(&server), vec![add_task_tool()]).await;
    assert_eq!(events, vec![call("call_1", "add_task", "{\"title\": \"Buy milk\"}")]);
}

#[tokio::test]
async fn assembles_two_tool_calls_in_one_turn() {
    let server = MockServer::start().await;
    let body = sse(&[
        text_chunk("Sure."),
        tool_fragment(0, Some("call_a"), Some("add_task"), "{\"title\":"),
        tool_fragment(1, Some("call_b"), Some("list_tasks"), "{\"status\":"),
        tool_fragment(0, None, None, "\"A\"}"),
        tool_fragment(1, None, None, "\"all\"}"),
        finish_chunk("tool_calls"),
    ]);
    mount_sse(&server, body).await;

    let events = collect(&default_model(&server), vec![add_task_tool()]).await;
    assert_eq!(
        events,
        vec![
            text("Sure."),
            call("call_a", "add_task", "{\"title\":\"A\"}"),
            call("call_b", "list_tasks", "{\"status\":\"all\"}"),
        ]
    );
}

#[tokio::test]
async fn a_finish_reason_completes_the_turn_without_done() {
    let server = MockServer::start().await;
    let body = format!(
        "data: {}\n\ndata: {}\n\ndata: {}\n\n",
        tool_fragment(0, Some("call_1"), Some("list_tasks"), "{\"status\""),
        tool_fragment(0, None, None, ":\"all\"}"),
        finish_chunk("tool_calls"),
    );
    mount_sse(&server, body).await;

    let events = collect(&default_model(&server), vec![]).await;
    assert_eq!(events, vec![call("call_1", "list_tasks", "{\"status\":\"all\"}")]);
}

/// A body that ends with neither a finish_reason nor `[DONE]` was cut off:
/// its text is kept, its half-assembled tool calls are not run.
#[tokio::test]
async fn a_stream_that_ends_without_done_or_finish_reason_is_a_bad_response() {
    let server = MockServer::start().await;
    let body = format!(
        "data: {}\n\ndata: {}\n\n",
        text_chunk("Let me"),
        tool_fragment(0, Some("call_1"), Some("list_tasks"), "{\"status\":\"all\"}"),
    );
    mount_sse(&server, body).await;

    let events = collect(&default_model(&server), vec![]).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], text("Let me"));
    assert!(matches!(events[1], Err(ModelError::BadResponse(_))), "{events:?}");
}

#[tokio::test]
async fn every_request_asks_for_at_most_max_tokens() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"max_tokens": 256})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(sse(&[text_chunk("ok")]), "text/event-stream"))
        .expect(1)
        .mount(&server)
        .await;

    let events = collect(&default_model(&server), vec![]).await;
    assert_eq!(events, vec![text("ok")]);
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/elsewhere/chat/completions"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/elsewhere/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(sse(&[text_chunk("followed")]), "text/event-stream"))
        .mount(&server)
        .await;

    let error = default_model(&server).stream(&history(), vec![]).await.err();
    assert_eq!(error, Some(ModelError::Unavailable("status 307".to_owned())));
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "the redirect target was never asked");
}

#[tokio::test]
async fn a_429_with_a_long_retry_after_fails_at_once_as_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "30"))
        .mount(&server)
        .await;

    let error = default_model(&server).stream(&history(), vec![]).await.err();
    assert_eq!(error, Some(ModelError::RateLimited { retry_after: Some(Duration::from_secs(30)) }));
    assert_eq!(server.received_requests().await.unwrap().len(), 1, "not retried before its Retry-After");
}

#[tokio::test]
async fn a_429_with_a_short_retry_after_is_retried_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_sse(&server, sse(&[text_chunk("ok"), finish_chunk("stop")])).await;

    let events = collect(&default_model(&server), vec![]).await;
    assert_eq!(events, vec![text("ok")]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn two_429s_are_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(429)).expect(2).mount(&server).await;

    let error = default_model(&server).stream(&history(), vec![]).await.err();
    assert_eq!(error, Some(ModelError::RateLimited { retry_after: None }));
}

#[tokio::test]
async fn http_500_is_retried_once_then_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(500).set_body_string("boom"))
        .expect(2)
        .mount(&server)
        .await;

    let error = default_model(&server).stream(&history(), vec![]).await.err();
    assert_eq!(error, Some(ModelError::Unavailable("status 500".to_owned())));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn http_400_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(400)).expect(1).mount(&server).await;

    let error = default_model(&server).stream(&history(), vec![]).await.err();
    assert_eq!(error, Some(ModelError::Unavailable("status 400".to_owned())));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn http_429_then_200_succeeds_through_the_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    mount_sse(&server, sse(&[text_chunk("ok"), finish_chunk("stop")])).await;

    let events = collect(&default_model(&server), vec![]).await;
    assert_eq!(events, vec![text("ok")]);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn stalled_upstream_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(sse(&[text_chunk("late")]), "text/event-stream")
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let model = model(&format!("{}/v1", server.uri()), None, Duration::from_millis(200));

    let started = Instant::now();
    let error = model.stream(&history(), vec![]).await.err();
    assert_eq!(error, Some(ModelError::Timeout));
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn malformed_chunk_is_a_bad_response() {
    let server = MockServer::start().await;
    let body = format!("data: {}\n\ndata: {{\"choices\": [oops\n\ndata: [DONE]\n\n", text_chunk("Hi"));
    mount_sse(&server, body).await;

    let events = collect(&default_model(&server), vec![]).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], text("Hi"));
    assert!(matches!(events[1], Err(ModelError::BadResponse(_))), "{events:?}");
}

#[tokio::test]
async fn request_carries_model_stream_tools_messages_and_bearer_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test"))
        .and(body_partial_json(json!({"model": "test-model", "stream": true, "max_tokens": 256})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(sse(&[finish_chunk("stop")]), "text/event-stream"))
        .expect(1)
        .mount(&server)
        .await;

    let mut turns = history();
    turns.push(ChatTurn::Assistant {
        content: String::new(),
        tool_calls: vec![ToolRequest {
            id: "call_1".into(),
            name: "add_task".into(),
            arguments: "{\"title\":\"x\"}".into(),
        }],
    });
    turns.push(ChatTurn::Tool { call_id: "call_1".into(), content: "{\"task\":{}}".into() });
    turns.push(ChatTurn::Assistant { content: "Added.".into(), tool_calls: vec![] });
    let events: Vec<_> = default_model(&server).stream(&turns, vec![add_task_tool()]).await.unwrap().collect().await;
    assert!(events.is_empty(), "{events:?}");

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(
        body["tools"],
        json!([{"type": "function", "function": {
            "name": "add_task", "description": "Add a task",
            "parameters": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}}])
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You manage tasks."},
            {"role": "user", "content": "add a task to buy milk"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "add_task", "arguments": "{\"title\":\"x\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"task\":{}}"},
            {"role": "assistant", "content": "Added."},
        ])
    );
}

#[tokio::test]
async fn no_key_means_no_authorization_header_and_no_tools_field() {
    let server = MockServer::start().await;
    mount_sse(&server, sse(&[text_chunk("hi")])).await;
    let model = model(&format!("{}/v1/", server.uri()), None, Duration::from_secs(5));

    let events: Vec<_> = model.stream(&history(), vec![]).await.unwrap().collect().await;
    assert_eq!(events, vec![text("hi")]);

    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert!(!requests[0].headers.contains_key("authorization"));
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert!(body.get("tools").is_none(), "{body}");
}

#[tokio::test]
async fn provider_error_chunk_is_unavailable() {
    let server = MockServer::start().await;
    mount_sse(&server, sse(&[json!({"error": {"code": 502, "message": "upstream overloaded"}})])).await;

    let events = collect(&default_model(&server), vec![]).await;
    assert_eq!(events, vec![Err(ModelError::Unavailable("provider reported an error (502)".to_owned()))]);
}

#[tokio::test]
async fn connection_refused_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let model = model(&format!("http://127.0.0.1:{port}/v1"), None, Duration::from_secs(2));

    let error = model.stream(&history(), vec![]).await.err();
    assert!(matches!(error, Some(ModelError::Unavailable(_))), "{error:?}");
}

/// A hand-rolled server that sends the headers and one chunk, then stalls:
/// the first delta must arrive before the stall (no buffering), then `Timeout`.
#[tokio::test]
async fn deltas_arrive_as_produced_and_a_stall_between_chunks_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = vec![0_u8; 64 * 1024];
        let mut received = Vec::new();
        // Read the request head and its body (Content-Length).
        loop {
            let n = socket.read(&mut buffer).await.unwrap();
            received.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&received).to_string();
            if let Some(head_end) = text.find("\r\n\r\n") {
                let length = text[..head_end]
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                if received.len() >= head_end + 4 + length {
                    break;
                }
            }
        }
        let chunk = format!("data: {}\n\n", text_chunk("first"));
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await.unwrap();
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
    });

    let model = model(&format!("http://127.0.0.1:{port}/v1"), None, Duration::from_millis(300));
    let started = Instant::now();
    let mut stream = model.stream(&history(), vec![]).await.unwrap();
    assert_eq!(stream.next().await, Some(text("first")));
    assert_eq!(stream.next().await, Some(Err(ModelError::Timeout)));
    assert_eq!(stream.next().await, None);
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    server.abort();
}

/// Reads one HTTP request (head and `Content-Length` body) from `socket`.
async fn read_request(socket: &mut tokio::net::TcpStream) {
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut received = Vec::new();
    loop {
        let n = socket.read(&mut buffer).await.unwrap();
        assert!(n > 0, "the client closed before sending its request");
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if received.len() >= head_end + 4 + length {
                return;
            }
        }
    }
}

/// The provider sends one chunk, then resets the connection (RST, not FIN).
#[tokio::test]
async fn a_connection_reset_mid_stream_is_unavailable_after_the_text_so_far() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket).await;
        let chunk = format!("data: {}\n\n", text_chunk("first"));
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        socket.write_all(head.as_bytes()).await.unwrap();
        socket.write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes()).await.unwrap();
        socket.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        socket.set_zero_linger().unwrap();
        drop(socket);
    });

    let model = model(&format!("http://127.0.0.1:{port}/v1"), None, Duration::from_secs(5));
    let events: Vec<_> = model.stream(&history(), vec![]).await.unwrap().collect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0], text("first"));
    assert!(
        matches!(&events[1], Err(ModelError::Unavailable(message)) if message.contains("connection lost")),
        "{events:?}"
    );
    server.await.unwrap();
}
