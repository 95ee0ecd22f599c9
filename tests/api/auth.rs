//! Register, login and me: every status and error code of the contract.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{TOKEN_SECRET, TestApp, forge_token};

#[tokio::test]
async fn register_returns_the_user_and_a_bearer_token() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "  Ada@Example.COM ", "password": "correct horse", "name": " Ada "}),
        )
        .await;
    let data = reply.data(StatusCode::CREATED);
    assert_eq!(data["user"]["email"], json!("ada@example.com"));
    assert_eq!(data["user"]["name"], json!("Ada"));
    assert!(
        data["user"]["id"]
            .as_str()
            .and_then(|id| uuid::Uuid::parse_str(id).ok())
            .is_some_and(|id| id.get_version_num() == 7)
    );
    assert!(data["user"]["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(data["user"].get("password_hash").is_none() && data["user"].get("password").is_none());
    assert_eq!(data["token_type"], json!("Bearer"));
    assert_eq!(data["expires_in"], json!(3600));
    assert!(data["access_token"].as_str().is_some_and(|t| t.starts_with("v4.local.")));
    assert!(reply.body["meta"]["timestamp"].is_string());
}

#[tokio::test]
async fn register_names_every_bad_field() {
    let app = TestApp::spawn().await;
    let reply =
        app.post("/api/v1/auth/register", None, json!({"email": "nope", "password": "short", "name": "   "})).await;
    reply.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(reply.bad_fields(), vec!["email", "password", "name"]);
}

#[tokio::test]
async fn register_length_boundaries() {
    let app = TestApp::spawn().await;
    let ok = |password: String, name: String| json!({"email": format!("{}@example.com", uuid::Uuid::new_v4().simple()), "password": password, "name": name});
    app.post("/api/v1/auth/register", None, ok("x".repeat(8), "n".repeat(100))).await.data(StatusCode::CREATED);
    app.post("/api/v1/auth/register", None, ok("x".repeat(128), "n".into())).await.data(StatusCode::CREATED);
    let long_password = app.post("/api/v1/auth/register", None, ok("x".repeat(129), "n".into())).await;
    assert_eq!(long_password.bad_fields(), vec!["password"]);
    let long_name = app.post("/api/v1/auth/register", None, ok("x".repeat(8), "n".repeat(101))).await;
    assert_eq!(long_name.bad_fields(), vec!["name"]);
    let long_email = format!("{}@example.com", "a".repeat(250));
    let reply = app
        .post("/api/v1/auth/register", None, json!({"email": long_email, "password": "correct horse", "name": "A"}))
        .await;
    assert_eq!(reply.bad_fields(), vec!["email"]);
}

#[tokio::test]
async fn malformed_missing_and_mistyped_bodies_are_validation_errors() {
    let app = TestApp::spawn().await;
    let malformed = app.post_raw("/api/v1/auth/register", None, "{\"email\": ").await;
    malformed.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(malformed.bad_fields(), vec!["body"]);
    let missing = app.post("/api/v1/auth/register", None, json!({"email": "a@b.io"})).await;
    missing.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(missing.bad_fields(), vec!["password", "name"]);
    let mistyped = app.post("/api/v1/auth/register", None, json!({"email": 5, "password": true, "name": "A"})).await;
    mistyped.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(mistyped.bad_fields(), vec!["email", "password"]);
    let not_an_object = app.post("/api/v1/auth/register", None, json!([1, 2])).await;
    not_an_object.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
}

#[tokio::test]
async fn duplicate_email_is_taken_whatever_the_case() {
    let app = TestApp::spawn().await;
    let user = app.register("Ada").await;
    let reply = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": user.email.to_uppercase(), "password": "another one", "name": "Eve"}),
        )
        .await;
    reply.assert_error(StatusCode::CONFLICT, "EMAIL_TAKEN");
}

#[tokio::test]
async fn login_with_the_right_password_issues_a_working_token() {
    let app = TestApp::spawn().await;
    let user = app.register("Ada").await;
    let reply = app
        .post("/api/v1/auth/login", None, json!({"email": user.email.to_uppercase(), "password": "correct horse"}))
        .await;
    let data = reply.data(StatusCode::OK);
    assert_eq!(data["user"]["id"], json!(user.id));
    let token = data["access_token"].as_str().unwrap_or_default();
    assert_ne!(token, user.token, "every login issues a fresh token");
    let me = app.get("/api/v1/auth/me", Some(token)).await;
    assert_eq!(me.data(StatusCode::OK)["id"], json!(user.id));
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let user = app.register("Ada").await;
    let wrong = app.post("/api/v1/auth/login", None, json!({"email": user.email, "password": "wrong horse"})).await;
    wrong.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let unknown =
        app.post("/api/v1/auth/login", None, json!({"email": "nobody@example.com", "password": "wrong horse"})).await;
    unknown.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    assert_eq!(wrong.body["error"]["message"], unknown.body["error"]["message"]);
    let missing = app.post("/api/v1/auth/login", None, json!({"email": user.email})).await;
    assert_eq!(missing.bad_fields(), vec!["password"]);
}

#[tokio::test]
async fn me_returns_the_caller() {
    let app = TestApp::spawn().await;
    let user = app.register("Ada").await;
    let me = app.get("/api/v1/auth/me", Some(&user.token)).await;
    let data = me.data(StatusCode::OK);
    assert_eq!(data["id"], json!(user.id));
    assert_eq!(data["email"], json!(user.email));
    assert_eq!(data["name"], json!("Ada"));
}

#[tokio::test]
async fn me_refuses_missing_malformed_tampered_expired_and_foreign_tokens() {
    let app = TestApp::spawn().await;
    let user = app.register("Ada").await;
    let mut tampered = user.token.clone();
    let last = tampered.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
    tampered.push(last);
    let expired = forge_token(&TOKEN_SECRET, &user.id, "2021-01-01T00:00:00+00:00");
    let foreign = forge_token(&[7; 32], &user.id, "2999-01-01T00:00:00+00:00");
    let unknown_user = forge_token(&TOKEN_SECRET, &uuid::Uuid::now_v7().to_string(), "2999-01-01T00:00:00+00:00");
    for token in [None, Some("garbage"), Some(tampered.as_str()), Some(&expired), Some(&foreign), Some(&unknown_user)] {
        let reply = app.get("/api/v1/auth/me", token).await;
        reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
        assert_eq!(reply.headers.get("www-authenticate").map(|v| v.as_bytes().to_vec()), Some(b"Bearer".to_vec()));
    }
    let basic =
        app.client.get(format!("{}/api/v1/auth/me", app.address)).header("authorization", "Basic YTpi").send().await;
    assert_eq!(basic.map(|r| r.status()).ok(), Some(StatusCode::UNAUTHORIZED));
}
