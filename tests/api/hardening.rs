//! The edges, tried as a hostile or careless client would: the bearer
//! scheme's case, bodies without a length, other transports, CORS, slow and
//! idle connections, the connection cap, login and registration floods.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestApp, read};

/// A body of `total` bytes streamed in 64 KiB chunks, with no length given.
fn endless_body(total: usize) -> reqwest::Body {
    let chunk = bytes_of(64 * 1024);
    let chunks = total / chunk.len();
    let stream = futures_util::stream::iter((0..chunks).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    reqwest::Body::wrap_stream(stream)
}

fn bytes_of(len: usize) -> Vec<u8> {
    vec![b'a'; len]
}

#[tokio::test]
async fn a_lower_case_bearer_scheme_is_authenticated_and_counted() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_PER_MINUTE", "2")]).await;
    let user = app.register("Ann").await;
    let scheme = format!("bearer {}", user.token);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = app
            .client
            .post(format!("{}/api/v1/chat", app.address))
            .header("authorization", &scheme)
            .json(&json!({"message": "list my tasks"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status());
    }
    assert_eq!(statuses, [StatusCode::OK, StatusCode::OK, StatusCode::TOO_MANY_REQUESTS]);
    let me = app.client.get(format!("{}/api/v1/auth/me", app.address)).header("authorization", &scheme);
    assert_eq!(me.send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn a_chunked_body_over_64_kib_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("content-type", "application/json")
        .body(endless_body(8 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    read(response).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn an_http2_body_over_64_kib_is_refused_with_413() {
    let app = TestApp::spawn().await;
    let client = reqwest::Client::builder().http2_prior_knowledge().build().unwrap();
    let response = client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("content-type", "application/json")
        .body(endless_body(8 * 1024 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    read(response).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    // A small HTTP/2 body is still served.
    let small = client
        .post(format!("{}/api/v1/auth/login", app.address))
        .json(&json!({"email": "nobody@example.com", "password": "whatever1"}))
        .send()
        .await
        .unwrap();
    read(small).await.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
}

#[tokio::test]
async fn a_declared_length_over_64_kib_is_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(format!("{}/api/v1/tasks", app.address))
        .header("content-type", "application/json")
        .body(bytes_of(65 * 1024))
        .send()
        .await
        .unwrap();
    read(response).await.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn every_response_says_nosniff_and_api_responses_are_not_cached() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    for (path, token, api) in [
        ("/health", None, false),
        ("/openapi.json", None, false),
        ("/api/v1/tasks", Some(user.token.as_str()), true),
        ("/api/v1/tasks", None, true),
        ("/api/v1/nowhere", None, true),
    ] {
        let reply = app.get(path, token).await;
        assert_eq!(reply.headers.get("x-content-type-options").map(|v| v.as_bytes()), Some(&b"nosniff"[..]), "{path}");
        if api {
            assert_eq!(reply.headers.get("cache-control").map(|v| v.as_bytes()), Some(&b"no-store"[..]), "{path}");
        }
    }
}

#[tokio::test]
async fn same_origin_writes_are_served_and_foreign_origins_get_no_cors_headers() {
    let app = TestApp::spawn().await;
    let own_origin = app.address.clone();
    let email = format!("swagger-{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": "correct horse", "name": "Ann"});
    let same = app
        .client
        .post(format!("{}/api/v1/auth/register", app.address))
        .header("origin", &own_origin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::CREATED);

    let foreign = app
        .client
        .post(format!("{}/api/v1/auth/login", app.address))
        .header("origin", "http://evil.example")
        .json(&json!({"email": email, "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::OK, "a foreign origin gets its normal answer");
    assert!(foreign.headers().get("access-control-allow-origin").is_none());

    let allowed = app
        .client
        .request(Method::OPTIONS, format!("{}/api/v1/tasks", app.address))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").map(|v| v.as_bytes()),
        Some(&b"http://localhost:3000"[..])
    );
}

#[tokio::test]
async fn any_origin_is_served_without_credentials_when_cors_origins_is_a_star() {
    let app = TestApp::spawn_with(&[("CORS_ORIGINS", "*")]).await;
    let response = app
        .client
        .get(format!("{}/api/v1/tasks", app.address))
        .header("origin", "http://anywhere.example")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_some());
    assert!(response.headers().get("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn an_empty_cors_list_stops_start_up_naming_the_variable() {
    let error = parley_server::Settings::from_lookup(|name| (name == "CORS_ORIGINS").then(|| " , ".to_owned()))
        .err()
        .map(|e| e.variable);
    assert_eq!(error, Some("CORS_ORIGINS"));
}

/// Reads until the server closes the connection; the elapsed time.
async fn time_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0_u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn a_request_head_that_never_ends_is_dropped_after_the_header_timeout() {
    let app = TestApp::spawn().await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: parley\r\nX-Slow: ").await.unwrap();
    let closed = time_until_closed(&mut stream, Duration::from_secs(20)).await;
    assert!(closed.is_some(), "a half-sent request head must not hold a connection forever");
    // A complete request on a fresh connection is still served.
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_instead_of_failing_the_server() {
    let app = TestApp::spawn_with(&[("MAX_CONNECTIONS", "2")]).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let first = TcpStream::connect(&address).await.unwrap();
    let _second = TcpStream::connect(&address).await.unwrap();
    let client = reqwest::Client::builder().timeout(Duration::from_millis(700)).build().unwrap();
    let health = format!("{}/health", app.address);
    assert!(client.get(&health).send().await.is_err(), "a third connection is not served while two are open");
    drop(first);
    let mut served = false;
    for _ in 0..20 {
        if client.get(&health).send().await.is_ok_and(|r| r.status() == StatusCode::OK) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "a freed slot is used again");
}

#[tokio::test]
async fn failed_logins_lock_an_account_whether_or_not_it_exists() {
    let app = TestApp::spawn_with(&[("LOGIN_FAILURES_PER_ACCOUNT", "3")]).await;
    let user = app.register("Ann").await;
    for email in [user.email.as_str(), "nobody-at-all@example.com"] {
        for _ in 0..3 {
            let reply =
                app.post("/api/v1/auth/login", None, json!({"email": email, "password": "wrong password"})).await;
            reply.assert_error(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
        }
        let locked = app.post("/api/v1/auth/login", None, json!({"email": email, "password": "correct horse"})).await;
        locked.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
        let retry: u64 = locked.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=15 * 60).contains(&retry), "{retry}");
    }
}

#[tokio::test]
async fn login_attempts_and_registrations_are_limited_per_address() {
    let app = TestApp::spawn_with(&[("LOGIN_ATTEMPTS_PER_ADDRESS", "4"), ("REGISTRATIONS_PER_ADDRESS", "2")]).await;
    let user = app.register("Ann").await;
    let _bob = app.register("Bob").await;
    let third = app
        .post(
            "/api/v1/auth/register",
            None,
            json!({"email": "carol@example.com", "password": "correct horse", "name": "Carol"}),
        )
        .await;
    third.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert!(third.headers.contains_key("retry-after"));
    for _ in 0..4 {
        let ok = app.post("/api/v1/auth/login", None, json!({"email": user.email, "password": "correct horse"})).await;
        ok.data(StatusCode::OK);
    }
    let fifth = app.post("/api/v1/auth/login", None, json!({"email": user.email, "password": "correct horse"})).await;
    fifth.assert_error(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
}

#[tokio::test]
async fn liveness_needs_no_database_and_readiness_reports_it() {
    let mut app = TestApp::spawn().await;
    let live = app.get("/health/live", None).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.body["checks"]["process"], json!("up"));
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["checks"]["database"], json!("connected"));
    if let Some(database) = app.take_database() {
        drop(database);
        let ready = app.get("/health/ready", None).await;
        assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE, "{}", ready.body);
        assert_eq!(ready.body["checks"]["database"], json!("unreachable"));
        assert_eq!(app.get("/health/live", None).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn a_valid_token_of_a_removed_user_is_refused_everywhere() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = app.post("/api/v1/tasks", Some(&ada.token), json!({"title": "before"})).await;
    let task_id = task.data(StatusCode::CREATED)["id"].as_str().expect("task id").to_owned();
    // An operator removes the account; the token stays valid for its lifetime.
    // The removal is not seen before `KNOWN_USER_TTL` has passed since the last
    // look-up, so the token is first used here by a client that never called.
    let bob = app.register("Bob").await;
    app.execute_sql(&format!("DELETE FROM users WHERE id = '{}'", bob.id)).await;

    let token = Some(bob.token.as_str());
    let task_path = format!("/api/v1/tasks/{task_id}");
    for reply in [
        app.get("/api/v1/auth/me", token).await,
        app.get("/api/v1/tasks", token).await,
        app.post("/api/v1/tasks", token, json!({"title": "after"})).await,
        app.get(&task_path, token).await,
        app.patch(&format!("{task_path}/complete"), token).await,
        app.delete(&task_path, token).await,
        app.get("/api/v1/chat/conversations", token).await,
        app.post("/api/v1/chat", token, json!({"message": "hello"})).await,
        app.post("/api/v1/sessions", token, json!({"name": "room"})).await,
        app.get("/api/v1/sessions", token).await,
        app.post("/api/v1/chatkit/sessions", token, json!({})).await,
    ] {
        reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
    let still = app.get(&task_path, Some(&ada.token)).await;
    assert_eq!(still.data(StatusCode::OK)["title"], json!("before"), "other users are untouched");
}

#[tokio::test]
async fn a_write_by_a_user_removed_moments_ago_is_401_not_500() {
    let app = TestApp::spawn().await;
    let eve = app.register("Eve").await;
    let token = Some(eve.token.as_str());
    // A request first: the server now knows Eve for `KNOWN_USER_TTL`.
    app.get("/api/v1/auth/me", token).await.data(StatusCode::OK);
    app.execute_sql(&format!("DELETE FROM users WHERE id = '{}'", eve.id)).await;
    // Within that window the token still passes, and the write's foreign key to the user fails.
    for reply in [
        app.post("/api/v1/tasks", token, json!({"title": "after"})).await,
        app.post("/api/v1/sessions", token, json!({"name": "room"})).await,
        app.post("/api/v1/chatkit/sessions", token, json!({})).await,
    ] {
        reply.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    }
}
