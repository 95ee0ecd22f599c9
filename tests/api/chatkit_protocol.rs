//! `POST /api/v1/chatkit`: the ChatKit server protocol over the same
//! conversations as `/chat` and `/chatkit/sessions`, with a real SSE reader.
//! (The shapes are checked against the reference `openai-chatkit` models by
//! `.ci/chatkit/check.py`.)

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Reply, TestApp, TestUser};

fn input(text: &str) -> Value {
    json!({"content": [{"type": "input_text", "text": text}], "attachments": [], "quoted_text": null,
           "inference_options": {"tool_choice": null, "model": null}})
}

fn create(text: &str) -> Value {
    json!({"type": "threads.create", "params": {"input": input(text)}, "metadata": {}})
}

fn add(thread: &str, text: &str) -> Value {
    json!({"type": "threads.add_user_message", "params": {"thread_id": thread, "input": input(text)}})
}

fn request(kind: &str, params: Value) -> Value {
    json!({"type": kind, "params": params})
}

async fn call(app: &TestApp, user: &TestUser, body: Value) -> Reply {
    app.post("/api/v1/chatkit", Some(&user.token), body).await
}

/// Sends a streaming request and reads every event's JSON.
async fn stream(app: &TestApp, user: &TestUser, body: Value) -> Vec<Value> {
    let response = app
        .client
        .post(format!("{}/api/v1/chatkit", app.address))
        .bearer_auth(&user.token)
        .json(&body)
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type =
        response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    let events = response.bytes_stream().eventsource();
    let collected =
        tokio::time::timeout(Duration::from_secs(20), events.collect::<Vec<_>>()).await.expect("the stream ends");
    collected
        .into_iter()
        .map(|event| {
            let event = event.expect("well-formed SSE");
            assert_eq!(event.event, "message", "no event names, data lines only");
            serde_json::from_str(&event.data).expect("each event is JSON")
        })
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap_or_default()).collect()
}

fn done_items<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == "thread.item.done" && e["item"]["type"] == kind).map(|e| &e["item"]).collect()
}

fn deltas(events: &[Value]) -> String {
    events
        .iter()
        .filter(|e| e["update"]["type"] == "assistant_message.content_part.text_delta")
        .filter_map(|e| e["update"]["delta"].as_str())
        .collect()
}

#[tokio::test]
async fn a_new_thread_streams_its_reply_and_is_a_conversation_on_every_door() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let events = stream(&app, &ada, create("add a task to buy milk")).await;
    let names = kinds(&events);
    assert_eq!(names[..3], ["thread.created", "thread.item.done", "stream_options"], "{names:?}");
    assert_eq!(names.last(), Some(&"thread.item.done"), "{names:?}");
    let thread = &events[0]["thread"];
    let id = thread["id"].as_str().unwrap_or_default().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a thread id is a conversation id");
    assert_eq!(thread["title"], json!("add a task to buy milk"));
    assert_eq!(thread["status"], json!({"type": "active"}));
    assert_eq!(events[1]["item"]["content"], json!([{"type": "input_text", "text": "add a task to buy milk"}]));

    let workflows = done_items(&events, "workflow");
    assert_eq!(workflows.len(), 1, "{names:?}");
    let tasks = workflows[0]["workflow"]["tasks"].as_array().cloned().unwrap_or_default();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["title"], json!("add_task (ok)"));
    assert!(tasks[0]["content"].as_str().is_some_and(|c| c.contains("buy milk")), "{tasks:?}");
    let replies = done_items(&events, "assistant_message");
    assert_eq!(replies.len(), 1);
    let text = replies[0]["content"][0]["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("buy milk"), "{text}");
    assert_eq!(deltas(&events), text, "the deltas add up to the stored text");
    assert!(names.contains(&"thread.item.added") && names.contains(&"thread.item.updated"));

    // The same conversation, with the same id and title, through /chat and the REST wrapper.
    let listed = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
    let listed = listed.data(StatusCode::OK);
    assert_eq!(listed[0]["id"], json!(id));
    assert_eq!(listed[0]["title"], json!("add a task to buy milk"));
    assert_eq!(listed[0]["message_count"], json!(2));
    let session = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
    let session = session.data(StatusCode::OK);
    assert_eq!(session["title"], json!("add a task to buy milk"));
    assert_eq!(session["messages"][1]["content"], json!(text));
    assert_eq!(session["messages"][1]["tool_calls"][0]["function"]["name"], json!("add_task"));
    let tasks = app.get("/api/v1/tasks", Some(&ada.token)).await;
    assert_eq!(tasks.data(StatusCode::OK)[0]["title"], json!("buy milk"));

    // Read back, the items keep the ids they streamed under.
    let read = call(&app, &ada, request("threads.get_by_id", json!({"thread_id": id}))).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["id"], json!(id));
    let items = read.body["items"]["data"].as_array().cloned().unwrap_or_default();
    let stored: Vec<&str> = items.iter().filter_map(|i| i["type"].as_str()).collect();
    assert_eq!(stored, ["user_message", "workflow", "assistant_message"]);
    assert_eq!(items[0]["id"], events[1]["item"]["id"]);
    assert_eq!(items[1]["id"], workflows[0]["id"]);
    assert_eq!(items[2]["id"], replies[0]["id"]);
    assert_eq!(items[2]["content"][0]["text"], json!(text));
    assert_eq!(read.body["items"]["has_more"], json!(false));
}

#[tokio::test]
async fn conversations_from_the_other_doors_are_threads() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let chat = app.post("/api/v1/chat", Some(&ada.token), json!({"message": "add a task to call mom"})).await;
    let chat_id = chat.data(StatusCode::OK)["conversation_id"].as_str().unwrap_or_default().to_owned();
    let session = app.post("/api/v1/chatkit/sessions", Some(&ada.token), json!({})).await;
    let session_id = session.data(StatusCode::CREATED)["id"].as_str().unwrap_or_default().to_owned();

    let list = call(&app, &ada, request("threads.list", json!({"limit": 10, "order": "desc"}))).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let threads = list.body["data"].as_array().cloned().unwrap_or_default();
    let pairs: Vec<(&str, &str)> = threads
        .iter()
        .map(|t| (t["id"].as_str().unwrap_or_default(), t["title"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(pairs, [(session_id.as_str(), "New chat"), (chat_id.as_str(), "add a task to call mom")]);
    assert_eq!(list.body["has_more"], json!(false));
    let oldest_first = call(&app, &ada, request("threads.list", json!({"order": "asc"}))).await;
    assert_eq!(oldest_first.body["data"][0]["id"], json!(chat_id));

    let read = call(&app, &ada, request("threads.get_by_id", json!({"thread_id": chat_id}))).await;
    let kinds: Vec<&str> =
        read.body["items"]["data"].as_array().into_iter().flatten().filter_map(|i| i["type"].as_str()).collect();
    assert_eq!(kinds, ["user_message", "workflow", "assistant_message"]);

    // A message through the protocol lands in the REST wrapper's session.
    let events = stream(&app, &ada, add(&session_id, "list my tasks")).await;
    assert_eq!(kinds_of_first(&events), "thread.item.done", "no thread.created for a known thread");
    let session = app.get(&format!("/api/v1/chatkit/sessions/{session_id}"), Some(&ada.token)).await;
    let messages = session.data(StatusCode::OK)["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["content"], json!("list my tasks"));
}

fn kinds_of_first(events: &[Value]) -> &str {
    events.first().and_then(|e| e["type"].as_str()).unwrap_or_default()
}

#[tokio::test]
async fn threads_list_and_items_list_page_as_the_protocol_says() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_PER_MINUTE", "1000")]).await;
    let ada = app.register("Ada").await;
    let first = stream(&app, &ada, create("add a task to water plants")).await;
    let id = first[0]["thread"]["id"].as_str().unwrap_or_default().to_owned();
    stream(&app, &ada, add(&id, "list my tasks")).await;
    for _ in 0..2 {
        stream(&app, &ada, create("list my tasks")).await;
    }

    // Items: 6 in all (user, workflow, reply; twice), pages of 4 in both orders.
    let page = call(&app, &ada, request("items.list", json!({"thread_id": id, "limit": 4, "order": "asc"}))).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["data"].as_array().map(Vec::len), Some(4));
    assert_eq!(page.body["has_more"], json!(true));
    let after = page.body["after"].clone();
    assert_eq!(after, page.body["data"][3]["id"]);
    let rest =
        call(&app, &ada, request("items.list", json!({"thread_id": id, "limit": 4, "order": "asc", "after": after})))
            .await;
    assert_eq!(rest.body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(rest.body["has_more"], json!(false));
    assert!(rest.body.get("after").is_none(), "no after on the last page: {}", rest.body);
    let newest = call(&app, &ada, request("items.list", json!({"thread_id": id}))).await;
    assert_eq!(newest.body["data"][0]["type"], json!("assistant_message"));
    assert_eq!(newest.body["data"][5]["type"], json!("user_message"));

    // Threads: 3, pages of 2.
    let page = call(&app, &ada, request("threads.list", json!({"limit": 2}))).await;
    assert_eq!(page.body["data"].as_array().map(Vec::len), Some(2));
    assert_eq!(page.body["has_more"], json!(true));
    let after = page.body["after"].clone();
    let rest = call(&app, &ada, request("threads.list", json!({"limit": 2, "after": after}))).await;
    assert_eq!(rest.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest.body["data"][0]["id"], json!(id), "the oldest-updated last");
    let asc = call(&app, &ada, request("threads.list", json!({"limit": 2, "order": "asc"}))).await;
    assert_eq!(asc.body["data"][0]["id"], json!(id));
    let asc_rest =
        call(&app, &ada, request("threads.list", json!({"limit": 2, "order": "asc", "after": asc.body["after"]})))
            .await;
    assert_eq!(asc_rest.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(asc_rest.body["has_more"], json!(false));
}

#[tokio::test]
async fn update_renames_and_delete_deletes_on_every_door() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let events = stream(&app, &ada, create("add a task to buy milk")).await;
    let id = events[0]["thread"]["id"].as_str().unwrap_or_default().to_owned();
    let renamed = call(&app, &ada, request("threads.update", json!({"thread_id": id, "title": "  Groceries "}))).await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["title"], json!("Groceries"));
    let conversation = app.get(&format!("/api/v1/chat/conversations/{id}"), Some(&ada.token)).await;
    assert_eq!(conversation.data(StatusCode::OK)["title"], json!("Groceries"));
    call(&app, &ada, request("threads.update", json!({"thread_id": id, "title": "   "})))
        .await
        .assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    let feedback =
        request("items.feedback", json!({"thread_id": id, "item_ids": [events[1]["item"]["id"]], "kind": "positive"}));
    let answered = call(&app, &ada, feedback).await;
    assert_eq!((answered.status, answered.body.clone()), (StatusCode::OK, json!({})));

    let deleted = call(&app, &ada, request("threads.delete", json!({"thread_id": id}))).await;
    assert_eq!((deleted.status, deleted.body.clone()), (StatusCode::OK, json!({})));
    app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token))
        .await
        .assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    call(&app, &ada, request("threads.get_by_id", json!({"thread_id": id})))
        .await
        .assert_error(StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
    assert_eq!(app.get("/api/v1/tasks", Some(&ada.token)).await.data(StatusCode::OK)[0]["title"], json!("buy milk"));
}

#[tokio::test]
async fn the_bearer_token_is_required_and_another_users_thread_is_refused() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let events = stream(&app, &ada, create("add a task to buy milk")).await;
    let id = events[0]["thread"]["id"].as_str().unwrap_or_default().to_owned();

    let no_token = app.post("/api/v1/chatkit", None, request("threads.list", json!({}))).await;
    no_token.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    let bad = app.post("/api/v1/chatkit", Some("not-a-token"), request("threads.list", json!({}))).await;
    bad.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");

    for body in [
        request("threads.get_by_id", json!({"thread_id": id})),
        request("items.list", json!({"thread_id": id})),
        request("threads.update", json!({"thread_id": id, "title": "mine now"})),
        request("threads.delete", json!({"thread_id": id})),
        request("items.feedback", json!({"thread_id": id, "item_ids": ["x"], "kind": "negative"})),
        request("threads.retry_after_item", json!({"thread_id": id, "item_id": "x"})),
        add(&id, "delete task buy milk"),
    ] {
        call(&app, &eve, body).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    }
    let eves = call(&app, &eve, request("threads.list", json!({}))).await;
    assert_eq!(eves.body["data"], json!([]), "Eve sees none of Ada's threads");
    let unknown = uuid::Uuid::now_v7().to_string();
    call(&app, &ada, add(&unknown, "hello")).await.assert_error(StatusCode::NOT_FOUND, "CONVERSATION_NOT_FOUND");
    // Nothing of Eve's reached Ada's conversation or tasks.
    let session = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
    assert_eq!(session.data(StatusCode::OK)["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(session.data(StatusCode::OK)["title"], json!("add a task to buy milk"));
}

#[tokio::test]
async fn every_request_counts_against_the_chat_budget() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_PER_MINUTE", "3")]).await;
    let ada = app.register("Ada").await;
    let first = call(&app, &ada, request("threads.list", json!({}))).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.headers.get("ratelimit-limit").map(|v| v.as_bytes().to_vec()), Some(b"3".to_vec()));
    assert_eq!(first.headers.get("ratelimit-remaining").map(|v| v.as_bytes().to_vec()), Some(b"2".to_vec()));
    // The REST wrapper spends the same budget.
    let session = app.post("/api/v1/chatkit/sessions", Some(&ada.token), json!({})).await;
    assert_eq!(session.headers.get("ratelimit-remaining").map(|v| v.as_bytes().to_vec()), Some(b"1".to_vec()));
    call(&app, &ada, request("threads.list", json!({}))).await;
    let refused = call(&app, &ada, create("add a task to buy milk")).await;
    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(refused.headers.get("retry-after").is_some());
    let list = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
    assert_eq!(list.data(StatusCode::OK).as_array().map(Vec::len), Some(1), "the refused request made nothing");
}

#[tokio::test]
async fn what_parley_does_not_offer_is_a_protocol_error_never_a_500() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    for kind in ["attachments.create", "attachments.delete", "input.transcribe", "threads.sync_custom_action"] {
        let refused =
            call(&app, &ada, request(kind, json!({"name": "a.png", "size": 1, "mime_type": "image/png"}))).await;
        refused.assert_error(StatusCode::BAD_REQUEST, "NOT_SUPPORTED");
        assert_eq!(refused.body["error"]["details"]["type"], json!(kind));
    }
    for body in [
        json!({"type": "threads.teleport", "params": {}}),
        json!({"params": {}}),
        json!([1, 2]),
        json!({"type": "threads.get_by_id", "params": {"thread_id": "not-a-uuid"}}),
        json!({"type": "threads.create", "params": {"input": {"content": [], "attachments": [], "inference_options": {}}}}),
        json!({"type": "threads.create", "params": {"input": {"content": [{"type": "input_text", "text": "hi"}],
               "attachments": ["att_1"], "inference_options": {}}}}),
        json!({"type": "threads.list", "params": {"limit": 1000}}),
        json!({"type": "threads.list", "params": {"after": "garbage"}}),
    ] {
        call(&app, &ada, body).await.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    }
    app.post_raw("/api/v1/chatkit", Some(&ada.token), "{not json")
        .await
        .assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    call(&app, &ada, create("   ")).await.assert_error(StatusCode::BAD_REQUEST, "EMPTY_MESSAGE");
    call(&app, &ada, create(&"a".repeat(2001))).await.assert_error(StatusCode::BAD_REQUEST, "MESSAGE_TOO_LONG");
    assert_eq!(app.get("/api/v1/chat/conversations", Some(&ada.token)).await.data(StatusCode::OK), &json!([]));

    // Streaming types Parley has nothing for answer an error event.
    let events = stream(&app, &ada, create("list my tasks")).await;
    let id = events[0]["thread"]["id"].as_str().unwrap_or_default().to_owned();
    let action = json!({"type": "threads.custom_action",
                        "params": {"thread_id": id, "item_id": null, "action": {"type": "noop", "payload": {}}}});
    for body in [action, request("threads.add_client_tool_output", json!({"thread_id": id, "result": {}}))] {
        let events = stream(&app, &ada, body).await;
        assert_eq!(kinds(&events), ["error"]);
        assert_eq!(events[0]["allow_retry"], json!(false));
        assert!(events[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn retry_after_item_replaces_the_reply_to_that_message() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let first = stream(&app, &ada, create("list my tasks")).await;
    let id = first[0]["thread"]["id"].as_str().unwrap_or_default().to_owned();
    let question = first[1]["item"]["id"].clone();
    let old_reply = done_items(&first, "assistant_message")[0]["id"].clone();

    let retried =
        stream(&app, &ada, request("threads.retry_after_item", json!({"thread_id": id, "item_id": question}))).await;
    let names = kinds(&retried);
    assert_eq!(names.first(), Some(&"stream_options"), "{names:?}");
    let new_reply = done_items(&retried, "assistant_message")[0]["id"].clone();
    assert_ne!(new_reply, old_reply);

    let read = call(&app, &ada, request("items.list", json!({"thread_id": id, "order": "asc"}))).await;
    let items = read.body["data"].as_array().cloned().unwrap_or_default();
    let ids: Vec<&Value> = items.iter().map(|i| &i["id"]).collect();
    assert_eq!(items.len(), 3, "{}", read.body);
    assert_eq!(ids[0], &question);
    assert_eq!(ids[2], &new_reply, "the old reply is gone");
    let session = app.get(&format!("/api/v1/chatkit/sessions/{id}"), Some(&ada.token)).await;
    assert_eq!(session.data(StatusCode::OK)["messages"].as_array().map(Vec::len), Some(2));

    // Not one of this thread's user messages: an error event, nothing removed.
    for item in [new_reply.clone(), json!("nope")] {
        let events =
            stream(&app, &ada, request("threads.retry_after_item", json!({"thread_id": id, "item_id": item}))).await;
        assert_eq!(kinds(&events), ["error"]);
    }
    let read = call(&app, &ada, request("items.list", json!({"thread_id": id}))).await;
    assert_eq!(read.body["data"].as_array().map(Vec::len), Some(3));
}

/// A provider asking for add_task first, then answering text.
async fn fake_provider() -> MockServer {
    crate::chat::fake_provider().await
}

#[tokio::test]
async fn through_a_model_provider_tool_calls_become_a_workflow_and_failures_an_error_event() {
    let provider = fake_provider().await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &base), ("LLM_API_KEY", "sk-test")]).await;
    let ada = app.register("Ada").await;
    let events = stream(&app, &ada, create("please add fake milk")).await;
    let workflows = done_items(&events, "workflow");
    assert_eq!(workflows[0]["workflow"]["tasks"][0]["title"], json!("add_task (ok)"));
    assert_eq!(deltas(&events), "Added Fake milk.");
    assert_eq!(done_items(&events, "assistant_message")[0]["content"][0]["text"], json!("Added Fake milk."));
    let position = |kind: &str, item: &str| events.iter().position(|e| e["type"] == kind && e["item"]["type"] == item);
    assert!(
        position("thread.item.done", "workflow") < position("thread.item.added", "assistant_message"),
        "the workflow is done before the text starts: {:?}",
        kinds(&events)
    );

    let failing = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(500)).mount(&failing).await;
    let base = format!("{}/v1", failing.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &base)]).await;
    let ada = app.register("Ada").await;
    let events = stream(&app, &ada, create("add a task to test")).await;
    let names = kinds(&events);
    assert_eq!(names, ["thread.created", "thread.item.done", "stream_options", "error"]);
    let error = events.last().cloned().unwrap_or_default();
    assert_eq!(error["code"], json!("custom"));
    assert_eq!(error["allow_retry"], json!(true));
    assert!(error["message"].as_str().is_some_and(|m| m.contains("language model")), "{error}");
    let list = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
    assert_eq!(list.data(StatusCode::OK)[0]["message_count"], json!(1), "the user's message is kept");
}

#[tokio::test]
async fn a_reply_whose_client_went_away_is_still_stored() {
    let provider = MockServer::start().await;
    let body = crate::chat::sse(&[crate::chat::text_chunk("Still "), crate::chat::text_chunk("here.")]);
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(body, "text/event-stream").set_delay(Duration::from_millis(500)),
        )
        .mount(&provider)
        .await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &base)]).await;
    let ada = app.register("Ada").await;
    let response = app
        .client
        .post(format!("{}/api/v1/chatkit", app.address))
        .bearer_auth(&ada.token)
        .json(&create("hello there"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
    drop(response); // the client goes away while the model is still thinking

    let mut count = json!(0);
    for _ in 0..100 {
        let list = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
        count = list.data(StatusCode::OK)[0]["message_count"].clone();
        if count == json!(2) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count, json!(2), "the reply was stored");
    let list = app.get("/api/v1/chat/conversations", Some(&ada.token)).await;
    let id = list.data(StatusCode::OK)[0]["id"].as_str().unwrap_or_default().to_owned();
    let read = call(&app, &ada, request("threads.get_by_id", json!({"thread_id": id}))).await;
    assert_eq!(read.body["items"]["data"][1]["content"][0]["text"], json!("Still here."));
}

#[tokio::test]
async fn a_deletion_is_a_plan_widget_confirmed_by_a_custom_action() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    app.post("/api/v1/tasks", Some(&ada.token), json!({"title": "Buy milk"})).await.data(StatusCode::CREATED);
    let events = stream(&app, &ada, create("delete Buy milk")).await;
    let thread = events[0]["thread"]["id"].as_str().unwrap_or_default().to_owned();
    let widgets = done_items(&events, "widget");
    assert_eq!(widgets.len(), 1, "{:?}", kinds(&events));
    let card = &widgets[0]["widget"];
    assert_eq!(card["type"], json!("Card"));
    assert_eq!(card["confirm"]["action"]["type"], json!("parley.plan.approve"));
    assert_eq!(card["cancel"]["action"]["type"], json!("parley.plan.reject"));
    assert!(widgets[0]["copy_text"].as_str().is_some_and(|t| t.contains("Delete \"Buy milk\"")));
    let tasks = || async { app.get("/api/v1/tasks", Some(&ada.token)).await.data(StatusCode::OK).clone() };
    assert_eq!(tasks().await.as_array().map(Vec::len), Some(1), "nothing deleted before the confirm");

    let confirm = json!({"type": "threads.custom_action", "params": {
        "thread_id": thread, "item_id": widgets[0]["id"], "action": card["confirm"]["action"]}});
    let answer = stream(&app, &ada, confirm.clone()).await;
    assert_eq!(kinds(&answer), ["thread.item.done"], "{answer:?}");
    assert_eq!(answer[0]["item"]["type"], json!("assistant_message"));
    assert_eq!(tasks().await, json!([]));
    let again = stream(&app, &ada, confirm).await;
    assert_eq!(kinds(&again), ["error"], "a plan is decided once: {again:?}");
}
