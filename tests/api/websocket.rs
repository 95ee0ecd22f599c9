//! Séance rooms over WebSocket: a real client (tokio-tungstenite) against
//! the real server. Every receive has a timeout, so a hang fails the test.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::sessions::{create_session, id};
use crate::support::{TOKEN_SECRET, TestApp, TestUser, forge_token};

const WAIT: Duration = Duration::from_secs(5);

/// Checks a server frame against its message in the AsyncAPI document
/// (`GET /asyncapi.json`, generated from the server's types).
fn assert_matches_asyncapi(frame: &Value) {
    use std::collections::HashMap;
    use std::sync::LazyLock;

    static VALIDATORS: LazyLock<HashMap<String, jsonschema::Validator>> = LazyLock::new(|| {
        let document = parley_server::asyncapi::document();
        let components = document["components"].clone();
        let schemas = components["schemas"].as_object().expect("schemas").clone();
        schemas
            .keys()
            .filter_map(|name| name.strip_prefix("server_").map(|event| (event.to_owned(), name.clone())))
            .map(|(event, name)| {
                let root = json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "$ref": format!("#/components/schemas/{name}"),
                    "components": components.clone(),
                });
                (event, jsonschema::validator_for(&root).expect("a valid JSON Schema"))
            })
            .collect()
    });
    let event = frame["event"].as_str().expect("event");
    let validator = VALIDATORS.get(event).unwrap_or_else(|| panic!("{event} is not in the AsyncAPI document"));
    let errors: Vec<String> = validator.iter_errors(frame).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{event} frame does not match the AsyncAPI document: {errors:?}\n{frame}");
}

/// A WebSocket client speaking the room protocol.
struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// The next thing a client saw.
#[derive(Debug)]
enum Seen {
    Event(String, Value),
    Closed(Option<u16>),
}

impl Client {
    async fn connect(app: &TestApp, session: &str, header_token: Option<&str>) -> Self {
        let url = format!("ws://{}/api/v1/sessions/{session}/ws", app.address.trim_start_matches("http://"));
        let mut request = url.into_client_request().unwrap();
        if let Some(token) = header_token {
            request.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("the upgrade answers in time")
            .expect("the upgrade is accepted");
        Self { socket }
    }

    /// Connects with the header token and joins; returns the `joined` data.
    async fn join(app: &TestApp, session: &str, user: &TestUser) -> (Self, Value) {
        let mut client = Self::connect(app, session, Some(&user.token)).await;
        client.send("join", json!({})).await;
        let joined = client.expect("joined").await;
        (client, joined)
    }

    async fn send(&mut self, event: &str, data: Value) {
        self.send_raw(json!({"event": event, "data": data}).to_string()).await;
    }

    async fn send_raw(&mut self, text: String) {
        self.socket.send(Message::text(text)).await.expect("send");
    }

    async fn next(&mut self) -> Seen {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next()).await.expect("a frame in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                    assert_matches_asyncapi(&frame);
                    let timestamp = frame["timestamp"].as_str().expect("timestamp");
                    assert!(timestamp.ends_with('Z') && timestamp.len() == 27, "{timestamp}");
                    return Seen::Event(frame["event"].as_str().expect("event").to_owned(), frame["data"].clone());
                }
                Some(Ok(Message::Close(frame))) => return Seen::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Seen::Closed(None),
            }
        }
    }

    /// The next event other than the spirit's.
    async fn next_human(&mut self) -> Seen {
        loop {
            match self.next().await {
                Seen::Event(event, _) if event.starts_with("spirit_") => {}
                seen => return seen,
            }
        }
    }

    /// Asserts the next non-spirit event is `event`; returns its data.
    async fn expect(&mut self, event: &str) -> Value {
        match self.next_human().await {
            Seen::Event(seen, data) if seen == event => data,
            other => panic!("expected {event}, saw {other:?}"),
        }
    }

    /// Asserts the next non-spirit event is an error with `code`.
    async fn expect_error(&mut self, code: &str) {
        let data = self.expect("error").await;
        assert_eq!(data["code"], json!(code), "{data}");
        assert!(data["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    /// Skips events until `event`; returns its data.
    async fn until(&mut self, event: &str) -> Value {
        loop {
            match self.next().await {
                Seen::Event(seen, data) if seen == event => return data,
                Seen::Closed(code) => panic!("closed ({code:?}) before {event}"),
                Seen::Event(..) => {}
            }
        }
    }

    /// Asserts an error event with `code` then a close frame with `close`.
    async fn expect_refusal(&mut self, code: &str, close: u16) {
        self.expect_error(code).await;
        self.expect_closed(close).await;
    }

    /// Skips events until the close frame; asserts its code.
    async fn expect_closed(&mut self, close: u16) {
        loop {
            match self.next().await {
                Seen::Closed(code) => {
                    assert_eq!(code, Some(close));
                    return;
                }
                Seen::Event(..) => {}
            }
        }
    }

    /// Proves nothing else is pending before a pong: ping and expect pong next.
    async fn expect_quiet(&mut self) {
        self.send("ping", json!({})).await;
        self.expect("pong").await;
    }
}

async fn room(app: &TestApp, host: &TestUser, max_users: u32) -> String {
    id(&create_session(app, host, json!({"name": "Séance", "max_users": max_users})).await)
}

async fn stored_messages(app: &TestApp, user: &TestUser, session: &str) -> Vec<Value> {
    let reply = app.get(&format!("/api/v1/sessions/{session}/messages?limit=100"), Some(&user.token)).await;
    reply.data(StatusCode::OK).as_array().unwrap().clone()
}

async fn participant_count(app: &TestApp, user: &TestUser, session: &str) -> Value {
    app.get(&format!("/api/v1/sessions/{session}"), Some(&user.token)).await.data(StatusCode::OK)["participant_count"]
        .clone()
}

#[tokio::test]
async fn join_with_the_header_token() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;

    let (mut client, joined) = Client::join(&app, &session, &ada).await;

    assert_eq!(joined["session"]["id"], json!(session));
    assert_eq!(joined["session"]["participant_count"], json!(1));
    assert_eq!(joined["participants"], json!([{"user_id": ada.id, "name": "Ada"}]));
    assert_eq!(joined["history"], json!([]));
    client.expect_quiet().await;
    assert_eq!(participant_count(&app, &ada, &session).await, json!(1));
}

#[tokio::test]
async fn join_with_the_token_in_the_join_frame_and_a_display_name() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let mut client = Client::connect(&app, &session, None).await;

    client.send("join", json!({"token": ada.token, "name": "  Madame Ada  "})).await;

    let joined = client.expect("joined").await;
    assert_eq!(joined["participants"], json!([{"user_id": ada.id, "name": "Madame Ada"}]));
}

#[tokio::test]
async fn bad_or_missing_token_is_refused_with_4001() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;

    let mut bad_header = Client::connect(&app, &session, Some("garbage")).await;
    bad_header.send("join", json!({})).await;
    bad_header.expect_refusal("UNAUTHORIZED", 4001).await;

    let mut no_token = Client::connect(&app, &session, None).await;
    no_token.send("join", json!({"name": "Ada"})).await;
    no_token.expect_refusal("UNAUTHORIZED", 4001).await;

    let mut bad_frame = Client::connect(&app, &session, None).await;
    bad_frame.send("join", json!({"token": "v4.local.tampered"})).await;
    bad_frame.expect_refusal("UNAUTHORIZED", 4001).await;
}

#[tokio::test]
async fn unknown_and_malformed_sessions_are_refused_with_4004() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;

    let mut unknown = Client::connect(&app, &uuid::Uuid::now_v7().to_string(), Some(&ada.token)).await;
    unknown.send("join", json!({})).await;
    unknown.expect_refusal("SESSION_NOT_FOUND", 4004).await;

    let mut malformed = Client::connect(&app, "not-a-uuid", Some(&ada.token)).await;
    malformed.expect_refusal("SESSION_NOT_FOUND", 4004).await;
}

#[tokio::test]
async fn a_closed_session_is_refused_with_4010() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    app.post(&format!("/api/v1/sessions/{session}/close"), Some(&ada.token), json!({})).await.data(StatusCode::OK);

    let mut client = Client::connect(&app, &session, Some(&ada.token)).await;
    client.send("join", json!({})).await;

    client.expect_refusal("SESSION_CLOSED", 4010).await;
}

#[tokio::test]
async fn a_full_session_refuses_a_new_user_with_4009_but_not_a_second_tab() {
    let app = TestApp::spawn().await;
    let (ada, bob, cy) = (app.register("Ada").await, app.register("Bob").await, app.register("Cy").await);
    let session = room(&app, &ada, 2).await;
    let (_ada_tab, _) = Client::join(&app, &session, &ada).await;
    let (_bob_tab, _) = Client::join(&app, &session, &bob).await;

    let mut refused = Client::connect(&app, &session, Some(&cy.token)).await;
    refused.send("join", json!({})).await;
    refused.expect_refusal("SESSION_FULL", 4009).await;

    let (_ada_second_tab, joined) = Client::join(&app, &session, &ada).await;
    assert_eq!(joined["participants"].as_array().map(Vec::len), Some(2));
    assert_eq!(participant_count(&app, &ada, &session).await, json!(2));
}

#[tokio::test]
async fn no_join_frame_within_ten_seconds_is_refused_with_4008() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let mut client = Client::connect(&app, &session, Some(&ada.token)).await;

    let frame = tokio::time::timeout(Duration::from_secs(12), client.socket.next()).await.expect("refused in time");

    let Some(Ok(Message::Text(text))) = frame else { panic!("expected an error event, got {frame:?}") };
    let error: Value = serde_json::from_str(text.as_str()).unwrap();
    assert_eq!(error["event"], json!("error"));
    assert_eq!(error["data"]["code"], json!("JOIN_TIMEOUT"));
    client.expect_closed(4008).await;
}

#[tokio::test]
async fn a_frame_before_join_is_refused_with_4001() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;

    let mut pinger = Client::connect(&app, &session, Some(&ada.token)).await;
    pinger.send("ping", json!({})).await;
    pinger.expect_refusal("UNAUTHORIZED", 4001).await;

    let mut garbled = Client::connect(&app, &session, Some(&ada.token)).await;
    garbled.send_raw("{oops".to_owned()).await;
    garbled.expect_refusal("UNAUTHORIZED", 4001).await;

    let (mut joined, _) = Client::join(&app, &session, &ada).await;
    joined.expect_quiet().await;
}

#[tokio::test]
async fn a_message_reaches_everyone_after_it_is_stored() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;
    let (mut b, _) = Client::join(&app, &session, &bob).await;
    a.expect("user_joined").await;

    b.send("send_message", json!({"message": "  Is anyone there?  "})).await;

    let at_a = a.expect("message_received").await;
    let at_b = b.expect("message_received").await;
    assert_eq!(at_a, at_b);
    assert_eq!(at_a["message"], json!("Is anyone there?"));
    assert_eq!(at_a["user_id"], json!(bob.id));
    assert_eq!(at_a["user_name"], json!("Bob"));
    assert_eq!(at_a["is_spirit"], json!(false));
    assert_eq!(at_a["session_id"], json!(session));
    let stored = stored_messages(&app, &ada, &session).await;
    assert_eq!(stored[0], at_a);
}

#[tokio::test]
async fn presence_counts_a_user_in_two_tabs_once() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;

    let (mut b1, _) = Client::join(&app, &session, &bob).await;
    assert_eq!(a.expect("user_joined").await, json!({"user_id": bob.id, "name": "Bob"}));
    let (mut b2, joined) = Client::join(&app, &session, &bob).await;
    assert_eq!(joined["participants"].as_array().map(Vec::len), Some(2));
    a.expect_quiet().await; // the second tab was not announced
    assert_eq!(participant_count(&app, &ada, &session).await, json!(2));

    b1.send("leave", json!({})).await;
    b1.expect_closed(1000).await;
    a.expect_quiet().await; // one tab is still there
    assert_eq!(participant_count(&app, &ada, &session).await, json!(2));

    b2.socket.close(None).await.unwrap();
    assert_eq!(a.expect("user_left").await, json!({"user_id": bob.id, "name": "Bob"}));
    assert_eq!(participant_count(&app, &ada, &session).await, json!(1));
}

#[tokio::test]
async fn typing_and_ping_reach_the_right_people() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;
    let (mut b, _) = Client::join(&app, &session, &bob).await;
    a.expect("user_joined").await;

    a.send("typing", json!({})).await;

    assert_eq!(b.expect("user_typing").await, json!({"user_id": ada.id, "name": "Ada"}));
    a.expect_quiet().await; // no user_typing for the typist
}

#[tokio::test]
async fn a_joiner_gets_the_recent_history_oldest_first() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;
    for text in ["one", "two", "three"] {
        a.send("send_message", json!({"message": text})).await;
        a.until("spirit_response").await;
    }

    let (_b, joined) = Client::join(&app, &session, &bob).await;

    let history = joined["history"].as_array().unwrap();
    let humans: Vec<&Value> =
        history.iter().filter(|m| m["is_spirit"] == json!(false)).map(|m| &m["message"]).collect();
    assert_eq!(humans, vec!["one", "two", "three"]);
    assert_eq!(history.len(), 6);
    assert_eq!(history, &stored_messages(&app, &ada, &session).await);
}

#[tokio::test]
async fn the_spirit_thinks_then_answers_and_its_reply_is_stored() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;

    a.send("send_message", json!({"message": "Is the lighthouse haunted?"})).await;

    let said = a.expect("message_received").await;
    a.until("spirit_thinking").await;
    let reply = a.until("spirit_response").await;
    let text = reply["message"].as_str().unwrap();
    let words = text.split_whitespace().count();
    assert!((1..=30).contains(&words), "{text}");
    assert_eq!(reply["word_count"], json!(words));
    let letters = text.chars().filter(|c| !c.is_whitespace()).count();
    let timings = reply["letter_timings"].as_array().unwrap();
    assert_eq!(timings.len(), letters);
    assert!(timings.iter().all(|ms| ms.as_u64().is_some_and(|ms| (80..=200).contains(&ms))));
    assert_eq!(reply["in_reply_to"], json!([said["id"]]));
    let stored = stored_messages(&app, &ada, &session).await;
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1]["id"], reply["id"]);
    assert_eq!(stored[1]["message"], reply["message"]);
    assert_eq!(stored[1]["timestamp"], reply["timestamp"]);
    assert_eq!(
        (&stored[1]["is_spirit"], &stored[1]["user_name"], &stored[1]["user_id"]),
        (&json!(true), &json!("Spirit"), &Value::Null)
    );
}

/// An OpenAI-compatible provider that answers `text` after `delay`.
async fn slow_provider(text: &str, delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": null}]});
    let done = json!({"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    let body = format!("data: {chunk}\n\ndata: {done}\n\ndata: [DONE]\n\n");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream").set_delay(delay))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn messages_said_while_the_spirit_thinks_are_folded_into_one_reply() {
    let provider = slow_provider("The candles gutter... I hear you all.", Duration::from_millis(1500)).await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", base.as_str())]).await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;

    a.send("send_message", json!({"message": "first"})).await;
    let first = a.expect("message_received").await;
    let mut burst = Vec::new();
    for text in ["second", "third", "fourth"] {
        a.send("send_message", json!({"message": text})).await;
        burst.push(a.expect("message_received").await["id"].clone());
    }

    let reply_one = a.until("spirit_response").await;
    let reply_two = a.until("spirit_response").await;
    assert_eq!(reply_one["in_reply_to"], json!([first["id"]]));
    assert_eq!(reply_two["in_reply_to"], json!(burst));
    assert_eq!(reply_two["message"], json!("The candles gutter... I hear you all."));
    a.expect_quiet().await;
    let spirits =
        stored_messages(&app, &ada, &session).await.into_iter().filter(|m| m["is_spirit"] == json!(true)).count();
    assert_eq!(spirits, 2);
}

#[tokio::test]
async fn a_failing_model_is_an_llm_unavailable_event_and_the_message_is_kept() {
    let provider = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&provider).await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", base.as_str())]).await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;

    a.send("send_message", json!({"message": "Hello?"})).await;

    a.expect("message_received").await;
    a.expect_error("LLM_UNAVAILABLE").await;
    a.expect_quiet().await;
    let stored = stored_messages(&app, &ada, &session).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["message"], json!("Hello?"));
}

#[tokio::test]
async fn many_simultaneous_joins_never_exceed_max_users() {
    let app = TestApp::spawn().await;
    let host = app.register("Host").await;
    let session = room(&app, &host, 2).await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(app.register(&format!("Guest{i}")).await);
    }
    let mut clients = Vec::new();
    for user in &users {
        clients.push(Client::connect(&app, &session, Some(&user.token)).await);
    }

    let outcomes = futures_util::future::join_all(clients.into_iter().map(|mut client| async move {
        client.send("join", json!({})).await;
        let seen = client.next().await;
        (seen, client)
    }))
    .await;

    let mut admitted = 0;
    let mut kept = Vec::new();
    for (seen, mut client) in outcomes {
        match seen {
            Seen::Event(event, _) if event == "joined" => {
                admitted += 1;
                kept.push(client);
            }
            Seen::Event(event, data) if event == "error" => {
                assert_eq!(data["code"], json!("SESSION_FULL"));
                client.expect_closed(4009).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(admitted, 2);
    assert_eq!(participant_count(&app, &host, &session).await, json!(2));
}

#[tokio::test]
async fn closing_the_session_tells_and_disconnects_everyone() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;
    let (mut b, _) = Client::join(&app, &session, &bob).await;

    let closed = app.post(&format!("/api/v1/sessions/{session}/close"), Some(&ada.token), json!({})).await;
    assert_eq!(closed.data(StatusCode::OK)["is_active"], json!(false));

    for client in [&mut a, &mut b] {
        client.until("session_closed").await;
        client.expect_closed(1000).await;
    }
    assert_eq!(participant_count(&app, &ada, &session).await, json!(0));
}

#[tokio::test]
async fn bad_frames_get_error_events_and_the_connection_stays_open() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;

    a.send_raw("not json".to_owned()).await;
    a.expect_error("INVALID_JSON").await;
    a.send("dance", json!({})).await;
    a.expect_error("UNKNOWN_EVENT").await;
    a.send("send_message", json!({"message": "   "})).await;
    a.expect_error("EMPTY_MESSAGE").await;
    a.send("send_message", json!({"message": "x".repeat(501)})).await;
    a.expect_error("MESSAGE_TOO_LONG").await;
    a.send("send_message", json!({})).await;
    a.expect_error("VALIDATION_ERROR").await;
    a.send("send_message", json!({"message": "y".repeat(17 * 1024)})).await;
    a.expect_error("FRAME_TOO_LARGE").await;
    a.socket.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    a.expect_error("INVALID_FRAME").await;
    a.send("join", json!({})).await;
    a.expect_error("ALREADY_JOINED").await;

    a.expect_quiet().await;
    a.send("send_message", json!({"message": "x".repeat(500)})).await;
    a.expect("message_received").await;
    assert_eq!(
        stored_messages(&app, &ada, &session).await.iter().filter(|m| m["is_spirit"] == json!(false)).count(),
        1
    );
}

#[tokio::test]
async fn a_flooding_client_is_rate_limited_and_the_others_are_not() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let (mut flooder, _) = Client::join(&app, &session, &ada).await;
    let (mut b, _) = Client::join(&app, &session, &bob).await;
    flooder.expect("user_joined").await;

    for i in 0..30 {
        flooder.send("send_message", json!({"message": format!("flood {i}")})).await;
    }
    b.send("send_message", json!({"message": "calm"})).await;

    let mut limited = 0;
    let mut received = 0;
    while received + limited < 30 {
        match flooder.next_human().await {
            Seen::Event(event, data) if event == "error" => {
                assert_eq!(data["code"], json!("RATE_LIMITED"));
                limited += 1;
            }
            Seen::Event(event, data) if event == "message_received" => {
                if data["message"] != json!("calm") {
                    received += 1;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(limited >= 15, "only {limited} limited");
    assert!(received >= 10, "only {received} accepted");
    loop {
        let data = b.until("message_received").await;
        if data["message"] == json!("calm") {
            break;
        }
    }
    flooder.expect_quiet().await;
}

#[tokio::test]
async fn a_client_that_never_reads_does_not_delay_the_room() {
    let app = TestApp::spawn().await;
    let (ada, bob, sloth) = (app.register("Ada").await, app.register("Bob").await, app.register("Sloth").await);
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;
    let (mut b, _) = Client::join(&app, &session, &bob).await;
    let (_never_reads, _) = Client::join(&app, &session, &sloth).await;

    let started = std::time::Instant::now();
    for round in 0..8 {
        let sender = if round % 2 == 0 { &mut a } else { &mut b };
        sender.send("send_message", json!({"message": format!("round {round} {}", "words ".repeat(60))})).await;
        for client in [&mut a, &mut b] {
            loop {
                let data = client.until("message_received").await;
                if data["message"].as_str().is_some_and(|m| m.starts_with(&format!("round {round} "))) {
                    break;
                }
            }
        }
    }

    assert!(started.elapsed() < Duration::from_secs(10), "the room slowed down: {:?}", started.elapsed());
}

/// A token of `user` that expires `seconds` from now.
fn token_expiring_in(user: &TestUser, seconds: i64) -> String {
    let exp = (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339();
    forge_token(&TOKEN_SECRET, &user.id, &exp)
}

#[tokio::test]
async fn when_the_token_expires_the_connection_is_closed_with_4001() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let mut client = Client::connect(&app, &session, None).await;
    client.send("join", json!({"token": token_expiring_in(&ada, 2)})).await;
    client.expect("joined").await;

    client.expect_refusal("UNAUTHORIZED", 4001).await;
}

#[tokio::test]
async fn reauth_with_a_new_token_of_the_same_user_outlives_the_first() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let mut client = Client::connect(&app, &session, None).await;
    client.send("join", json!({"token": token_expiring_in(&ada, 2)})).await;
    client.expect("joined").await;

    client.send("reauth", json!({"token": ada.token})).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    client.expect_quiet().await;
    client.send("reauth", json!({"token": bob.token})).await;
    client.expect_refusal("UNAUTHORIZED", 4001).await;
}

#[tokio::test]
async fn reauth_with_a_bad_token_is_refused_with_4001() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut garbage, _) = Client::join(&app, &session, &ada).await;
    let (mut expired, _) = Client::join(&app, &session, &ada).await;

    garbage.send("reauth", json!({"token": "v4.local.garbage"})).await;
    expired.send("reauth", json!({"token": forge_token(&TOKEN_SECRET, &ada.id, "2021-01-01T00:00:00+00:00")})).await;

    garbage.expect_refusal("UNAUTHORIZED", 4001).await;
    expired.expect_refusal("UNAUTHORIZED", 4001).await;
}

#[tokio::test]
async fn the_server_pings_and_closes_only_a_silent_connection() {
    let app = TestApp::spawn_with(&[("WS_PING_INTERVAL_SECONDS", "1"), ("WS_IDLE_TIMEOUT_SECONDS", "2")]).await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let (mut reader, _) = Client::join(&app, &session, &ada).await;
    let (mut silent, _) = Client::join(&app, &session, &bob).await;

    // The reader's client answers every ping with a pong while it reads;
    // the silent one reads nothing, so it answers nothing.
    let (mut pings, mut silent_left) = (0, false);
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while let Ok(frame) = tokio::time::timeout_at(until, reader.socket.next()).await {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(Message::Text(text))) => silent_left |= text.as_str().contains("\"user_left\""),
            other => panic!("the reader saw {other:?}"),
        }
    }

    assert!(pings >= 2, "{pings} pings");
    silent.expect_closed(1001).await;
    if !silent_left {
        reader.until("user_left").await;
    }
    reader.expect_quiet().await;
}

#[tokio::test]
async fn one_users_connections_share_one_message_budget() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut tab1, _) = Client::join(&app, &session, &ada).await;
    let (mut tab2, _) = Client::join(&app, &session, &ada).await;

    for i in 0..8 {
        tab1.send("send_message", json!({"message": format!("one {i}")})).await;
        tab2.send("send_message", json!({"message": format!("two {i}")})).await;
    }

    let mut limited = 0;
    for tab in [&mut tab1, &mut tab2] {
        tab.send("ping", json!({})).await;
        loop {
            match tab.next_human().await {
                Seen::Event(event, _) if event == "pong" => break,
                Seen::Event(event, data) if event == "error" => {
                    assert_eq!(data["code"], json!("RATE_LIMITED"));
                    limited += 1;
                }
                Seen::Event(event, _) if event == "message_received" => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    let accepted =
        stored_messages(&app, &ada, &session).await.iter().filter(|m| m["is_spirit"] == json!(false)).count();
    assert_eq!(accepted + limited, 16);
    assert!(accepted <= 12, "{accepted} accepted: each tab had its own budget");
}

#[tokio::test]
async fn a_client_that_keeps_flooding_even_with_bad_frames_is_closed_with_1008() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut flooder, _) = Client::join(&app, &session, &ada).await;

    for _ in 0..300 {
        if flooder.socket.send(Message::text("not json")).await.is_err() {
            break;
        }
    }

    let mut rate_limited = 0;
    loop {
        match flooder.next().await {
            Seen::Event(event, data) if event == "error" => {
                if data["code"] == json!("RATE_LIMITED") {
                    rate_limited += 1;
                } else {
                    assert_eq!(data["code"], json!("INVALID_JSON"));
                }
            }
            Seen::Closed(code) => {
                assert_eq!(code, Some(1008));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(rate_limited > 0, "bad frames spend the flood budget");
}

#[tokio::test]
async fn a_frame_over_64_kib_closes_the_connection_with_1009() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut client, _) = Client::join(&app, &session, &ada).await;

    client.send("send_message", json!({"message": "x".repeat(70 * 1024)})).await;

    client.expect_closed(1009).await;
}

#[tokio::test]
async fn an_eleventh_connection_of_one_user_is_refused_with_4029() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let mut tabs = Vec::new();
    for _ in 0..10 {
        tabs.push(Client::join(&app, &session, &ada).await.0);
    }

    let mut eleventh = Client::connect(&app, &session, Some(&ada.token)).await;
    eleventh.send("join", json!({})).await;

    eleventh.expect_refusal("TOO_MANY_CONNECTIONS", 4029).await;
    let (mut other_user, _) = Client::join(&app, &session, &bob).await;
    other_user.expect_quiet().await;
    tabs[0].expect("user_joined").await;
    tabs[0].expect_quiet().await;
}

#[tokio::test]
async fn on_shutdown_every_connection_is_told_and_closed_with_1001() {
    let mut app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = room(&app, &ada, 4).await;
    let (mut joined, _) = Client::join(&app, &session, &ada).await;
    let mut joining = Client::connect(&app, &session, Some(&ada.token)).await;
    joined.expect_quiet().await;

    app.shut_down();

    joined.expect_refusal("SERVER_SHUTTING_DOWN", 1001).await;
    joining.expect_refusal("SERVER_SHUTTING_DOWN", 1001).await;
}

#[tokio::test]
async fn past_the_chat_budget_the_spirit_does_not_answer_but_the_message_is_kept() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_PER_MINUTE", "1")]).await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = room(&app, &ada, 4).await;
    let (mut a, _) = Client::join(&app, &session, &ada).await;
    let (mut b, _) = Client::join(&app, &session, &bob).await;
    a.expect("user_joined").await;
    a.send("send_message", json!({"message": "first"})).await;
    let first = a.expect("message_received").await;
    assert_eq!(a.until("spirit_response").await["in_reply_to"], json!([first["id"]]));

    a.send("send_message", json!({"message": "second, past Ada's budget"})).await;
    let second = a.expect("message_received").await;
    b.send("send_message", json!({"message": "third, within Bob's"})).await;
    let third = a.expect("message_received").await;

    // Every reply up to the one to Bob's message leaves Ada's second one out.
    loop {
        let reply = a.until("spirit_response").await;
        let in_reply_to = reply["in_reply_to"].as_array().unwrap().clone();
        assert!(!in_reply_to.contains(&second["id"]), "the spirit answered past the budget: {reply}");
        if in_reply_to.contains(&third["id"]) {
            break;
        }
    }
    let stored = stored_messages(&app, &ada, &session).await;
    assert!(stored.iter().any(|m| m["id"] == second["id"]), "the message is kept");
}

#[tokio::test]
async fn past_spirit_max_concurrent_a_quiet_room_gets_no_reply() {
    let provider = slow_provider("The veil is thin tonight.", Duration::from_millis(1500)).await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", base.as_str()), ("SPIRIT_MAX_CONCURRENT", "1")]).await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let (attic, cellar) = (room(&app, &ada, 4).await, room(&app, &bob, 4).await);
    let (mut a, _) = Client::join(&app, &attic, &ada).await;
    let (mut b, _) = Client::join(&app, &cellar, &bob).await;

    a.send("send_message", json!({"message": "Is anyone there?"})).await;
    a.until("spirit_thinking").await;
    b.send("send_message", json!({"message": "skipped: the spirit is busy elsewhere"})).await;
    let skipped = b.expect("message_received").await;
    a.until("spirit_response").await;
    b.send("send_message", json!({"message": "answered: the spirit is free"})).await;
    let answered = b.expect("message_received").await;

    let reply = b.until("spirit_response").await;
    assert_eq!(reply["in_reply_to"], json!([answered["id"]]), "not {}", skipped["id"]);
}
