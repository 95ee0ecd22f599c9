//! The séance sessions section over REST: every operation and its errors.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser};

pub async fn create_session(app: &TestApp, host: &TestUser, body: Value) -> Value {
    app.post("/api/v1/sessions", Some(&host.token), body).await.data(StatusCode::CREATED).clone()
}

pub fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn create_returns_the_session_hosted_by_the_caller() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;

    let session = create_session(&app, &ada, json!({"name": "  The attic  "})).await;

    assert_eq!(session["name"], json!("The attic"));
    assert_eq!(session["max_users"], json!(6));
    assert_eq!(session["is_active"], json!(true));
    assert_eq!(session["host_id"], json!(ada.id));
    assert_eq!(session["participant_count"], json!(0));
    assert_eq!(session["closed_at"], Value::Null);
    assert!(session["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let fetched = app.get(&format!("/api/v1/sessions/{}", id(&session)), Some(&ada.token)).await;
    assert_eq!(fetched.data(StatusCode::OK), &session);
}

#[tokio::test]
async fn create_validates_name_and_max_users_naming_every_field() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;

    let both = app.post("/api/v1/sessions", Some(&ada.token), json!({"name": "  ", "max_users": 1})).await;
    both.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(both.bad_fields(), vec!["name", "max_users"]);

    let long = app.post("/api/v1/sessions", Some(&ada.token), json!({"name": "x".repeat(101), "max_users": 51})).await;
    assert_eq!(long.bad_fields(), vec!["name", "max_users"]);
    let missing = app.post("/api/v1/sessions", Some(&ada.token), json!({"max_users": 4})).await;
    missing.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");

    let edges = create_session(&app, &ada, json!({"name": "x".repeat(100), "max_users": 50})).await;
    assert_eq!(edges["max_users"], json!(50));
    let small = create_session(&app, &ada, json!({"name": "pair", "max_users": 2})).await;
    assert_eq!(small["max_users"], json!(2));
}

#[tokio::test]
async fn every_operation_needs_a_token() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = create_session(&app, &ada, json!({"name": "Parlour"})).await;
    let path = format!("/api/v1/sessions/{}", id(&session));

    app.post("/api/v1/sessions", None, json!({"name": "x"}))
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.get("/api/v1/sessions", None).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.get(&path, Some("garbage")).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.get(&format!("{path}/messages"), None).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.post(&format!("{path}/close"), None, json!({})).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn unknown_or_malformed_id_is_session_not_found_with_its_id() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let unknown = uuid::Uuid::now_v7().to_string();

    for raw in [unknown.as_str(), "not-a-uuid"] {
        let reply = app.get(&format!("/api/v1/sessions/{raw}"), Some(&ada.token)).await;
        reply.assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
        assert_eq!(reply.body["error"]["details"]["session_id"], json!(raw));
        app.get(&format!("/api/v1/sessions/{raw}/messages"), Some(&ada.token))
            .await
            .assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
        app.post(&format!("/api/v1/sessions/{raw}/close"), Some(&ada.token), json!({}))
            .await
            .assert_error(StatusCode::NOT_FOUND, "SESSION_NOT_FOUND");
    }
}

#[tokio::test]
async fn list_shows_active_sessions_newest_first_with_pages() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let mut created = Vec::new();
    for i in 0..5 {
        let host = if i % 2 == 0 { &ada } else { &bob };
        created.push(id(&create_session(&app, host, json!({"name": format!("room {i}")})).await));
    }
    app.post(&format!("/api/v1/sessions/{}/close", created[1]), Some(&bob.token), json!({})).await.data(StatusCode::OK);
    let expected: Vec<String> = created.iter().rev().filter(|id| **id != created[1]).cloned().collect();

    let first = app.get("/api/v1/sessions?limit=3", Some(&bob.token)).await;
    let data = first.data(StatusCode::OK).as_array().unwrap().clone();
    assert_eq!(first.body["meta"]["total"], json!(4));
    let cursor = first.body["meta"]["next_cursor"].as_str().expect("a next page").to_owned();
    let second = app.get(&format!("/api/v1/sessions?limit=3&cursor={cursor}"), Some(&bob.token)).await;
    let rest = second.data(StatusCode::OK).as_array().unwrap().clone();

    let seen: Vec<String> = data.iter().chain(rest.iter()).map(id).collect();
    assert_eq!(seen, expected);
    assert_eq!(second.body["meta"]["next_cursor"], Value::Null);
    assert!(data.iter().all(|s| s["is_active"] == json!(true)));
}

#[tokio::test]
async fn list_pagination_errors_and_empty_list() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;

    let empty = app.get("/api/v1/sessions", Some(&ada.token)).await;
    assert_eq!(empty.data(StatusCode::OK), &json!([]));
    assert_eq!(empty.body["meta"]["total"], json!(0));
    assert_eq!(empty.body["meta"]["next_cursor"], Value::Null);

    let bad = app.get("/api/v1/sessions?limit=0&cursor=zz", Some(&ada.token)).await;
    bad.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(bad.bad_fields(), vec!["cursor", "limit"]);
}

#[tokio::test]
async fn close_is_host_only_and_returns_the_closed_session() {
    let app = TestApp::spawn().await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let session = create_session(&app, &ada, json!({"name": "Parlour", "max_users": 3})).await;
    let path = format!("/api/v1/sessions/{}", id(&session));

    let refused = app.post(&format!("{path}/close"), Some(&bob.token), json!({})).await;
    refused.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(app.get(&path, Some(&bob.token)).await.data(StatusCode::OK)["is_active"], json!(true));

    let closed = app.post(&format!("{path}/close"), Some(&ada.token), json!({})).await;
    let closed = closed.data(StatusCode::OK).clone();
    assert_eq!(closed["is_active"], json!(false));
    assert!(closed["closed_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(closed["participant_count"], json!(0));

    let again = app.post(&format!("{path}/close"), Some(&ada.token), json!({})).await;
    assert_eq!(again.data(StatusCode::OK)["closed_at"], closed["closed_at"]);
    assert_eq!(app.get(&path, Some(&bob.token)).await.data(StatusCode::OK), &closed);
}

#[tokio::test]
async fn messages_of_a_new_session_are_an_empty_page_and_validate_paging() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let session = create_session(&app, &ada, json!({"name": "Parlour"})).await;
    let path = format!("/api/v1/sessions/{}/messages", id(&session));

    let empty = app.get(&path, Some(&ada.token)).await;
    assert_eq!(empty.data(StatusCode::OK), &json!([]));
    assert_eq!(empty.body["meta"]["total"], json!(0));

    let bad = app.get(&format!("{path}?limit=101"), Some(&ada.token)).await;
    bad.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(bad.bad_fields(), vec!["limit"]);
}

#[tokio::test]
async fn a_host_past_the_open_sessions_limit_is_rate_limited_until_one_closes() {
    let app = TestApp::spawn_with(&[("MAX_OPEN_SESSIONS_PER_USER", "2")]).await;
    let (ada, bob) = (app.register("Ada").await, app.register("Bob").await);
    let first = create_session(&app, &ada, json!({"name": "one"})).await;
    create_session(&app, &ada, json!({"name": "two"})).await;

    let refused = app.post("/api/v1/sessions", Some(&ada.token), json!({"name": "three"})).await;

    refused.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    let retry_after = refused.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    assert!(retry_after.is_some_and(|s| s >= 1), "{:?}", refused.headers);
    create_session(&app, &bob, json!({"name": "Bob's own"})).await;
    app.post(&format!("/api/v1/sessions/{}/close", id(&first)), Some(&ada.token), json!({})).await.data(StatusCode::OK);
    create_session(&app, &ada, json!({"name": "three, now"})).await;
}
