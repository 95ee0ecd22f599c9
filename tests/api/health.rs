//! `GET /health` and the service-level behaviour every route shares.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{self, TestApp};

#[tokio::test]
async fn health_reports_a_connected_database() {
    let app = TestApp::spawn().await;
    let reply = app.get("/health", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], json!("healthy"));
    assert_eq!(reply.body["database"], json!("connected"));
    assert_eq!(reply.body["environment"], json!("test"));
    assert_eq!(reply.body["version"], json!("0.1.0"));
    assert!(reply.body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[tokio::test]
async fn health_is_503_quickly_when_the_database_is_gone_and_api_says_database_unavailable() {
    let mut app = TestApp::spawn().await;
    if !app.is_postgres() {
        return; // An embedded file cannot become unreachable.
    }
    let user = app.register("Ada").await;
    drop(app.take_database());
    let started = std::time::Instant::now();
    let reply = app.get("/health", None).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body["status"], json!("unhealthy"));
    assert_eq!(reply.body["database"], json!("unreachable"));
    let tasks = app.get("/api/v1/tasks", Some(&user.token)).await;
    tasks.assert_error(StatusCode::SERVICE_UNAVAILABLE, "DATABASE_UNAVAILABLE");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "answers come without a hang");
}

#[tokio::test]
async fn unknown_route_is_not_found_in_the_envelope() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/nope", None).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    app.get("/nothing/here", None).await.assert_error(StatusCode::NOT_FOUND, "NOT_FOUND");
}

#[tokio::test]
async fn request_id_is_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let response = app.client.get(format!("{}/health", app.address)).header("x-request-id", "abc-123").send().await;
    let echoed = response.ok().and_then(|r| r.headers().get("x-request-id").map(|v| v.as_bytes().to_vec()));
    assert_eq!(echoed.as_deref(), Some(b"abc-123".as_slice()));
    let generated = app.get("/health", None).await.headers.get("x-request-id").cloned();
    assert!(generated.is_some_and(|v| v.len() >= 32));
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(65 * 1024);
    let reply =
        app.post("/api/v1/auth/register", None, json!({"email": "a@b.io", "password": huge, "name": "A"})).await;
    reply.assert_error(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
}

#[tokio::test]
async fn cors_allows_the_configured_origins_only() {
    let app = TestApp::spawn_with(&[("CORS_ORIGINS", "http://app.example")]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/api/v1/tasks", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let allowed = preflight("http://app.example").await.expect("answers");
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").map(|v| v.as_bytes().to_vec()),
        Some(b"http://app.example".to_vec())
    );
    let refused = preflight("http://evil.example").await.expect("answers");
    assert!(refused.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn errors_to_a_browser_keep_the_envelope_and_the_cors_headers() {
    let app = TestApp::spawn_with(&[("CORS_ORIGINS", "http://app.example")]).await;
    for path in ["/api/v1/tasks", "/api/v1/no-such-route"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .header("origin", "http://app.example")
            .send()
            .await
            .expect("answers");
        let reply = support::read(response).await;
        let (status, code) = if path == "/api/v1/tasks" {
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
        } else {
            (StatusCode::NOT_FOUND, "NOT_FOUND")
        };
        reply.assert_error(status, code);
        assert_eq!(
            reply.headers.get("access-control-allow-origin").map(|v| v.as_bytes().to_vec()),
            Some(b"http://app.example".to_vec()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn health_refuses_other_methods_in_the_envelope_with_a_request_id() {
    let app = TestApp::spawn().await;
    let reply = app.post("/health", None, json!({})).await;
    reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    assert!(reply.headers.get("x-request-id").is_some());
}
