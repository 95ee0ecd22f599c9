//! `GET /metrics`, scraped and parsed as Prometheus would.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::TestApp;

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format")
}

/// The summed value of `name` over the samples whose labels include `labels`.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

async fn scrape(client: &reqwest::Client, url: &str) -> prometheus_parse::Scrape {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn requests_are_counted_by_route_template_and_status() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let task = app.post("/api/v1/tasks", Some(&user.token), json!({"title": "counted"})).await;
    let id = task.body["data"]["id"].as_str().unwrap().to_owned();
    app.get(&format!("/api/v1/tasks/{id}"), Some(&user.token)).await.data(StatusCode::OK);
    app.get("/api/v1/tasks/not-a-uuid", Some(&user.token)).await;
    app.get("/no/such/route/at/all", None).await;

    let scrape = scrape(&app.client, &format!("{}/metrics", app.address)).await;
    let ok = [("route", "/api/v1/tasks/:id"), ("method", "GET"), ("status", "200")];
    assert!(value(&scrape, "http_requests_total", &ok) >= 1.0);
    let not_found = [("route", "/api/v1/tasks/:id"), ("status", "404")];
    assert!(value(&scrape, "http_requests_total", &not_found) >= 1.0);
    assert!(value(&scrape, "http_requests_total", &[("route", "other")]) >= 1.0, "strangers share one label");
    assert!(
        scrape.samples.iter().all(|s| s.labels.get("route").is_none_or(|r| !r.contains("not-a-uuid"))),
        "no raw path becomes a label"
    );
    assert!(scrape.samples.iter().any(|s| s.metric == "http_request_duration_seconds"
        && matches!(&s.value, prometheus_parse::Value::Histogram(buckets) if !buckets.is_empty())));
    assert_eq!(value(&scrape, "parley_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    assert!(value(&scrape, "store_pool_connections", &[("state", "max")]) >= 1.0);
}

#[tokio::test]
async fn refusals_and_model_requests_are_counted() {
    let app = TestApp::spawn_with(&[("RATE_LIMIT_PER_MINUTE", "1")]).await;
    let user = app.register("Ann").await;
    app.post("/api/v1/chat", Some(&user.token), json!({"message": "list my tasks"})).await;
    let refused = app.post("/api/v1/chat", Some(&user.token), json!({"message": "list my tasks"})).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    let scrape = scrape(&app.client, &format!("{}/metrics", app.address)).await;
    assert!(value(&scrape, "rate_limit_refusals_total", &[("limit", "chat")]) >= 1.0);
    assert!(value(&scrape, "model_requests_total", &[("provider", "offline")]) >= 1.0);
}

#[tokio::test]
async fn metrics_addr_moves_the_endpoint_off_the_api_port() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("127.0.0.1:{port}");
    let app = TestApp::spawn_with(&[("METRICS_ADDR", &address)]).await;
    let api = app.get("/metrics", None).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    let scrape = scrape(&app.client, &format!("http://{address}/metrics")).await;
    assert!(!scrape.samples.is_empty());
}

#[tokio::test]
async fn metrics_addr_off_serves_and_counts_nothing() {
    let app = TestApp::spawn_with(&[("METRICS_ADDR", "off")]).await;
    assert_eq!(app.get("/health", None).await.status, StatusCode::OK);
    let api = app.get("/metrics", None).await;
    assert_eq!(api.status, StatusCode::NOT_FOUND);
    assert_eq!(api.body["error"]["code"], "NOT_FOUND", "{}", api.body);
}

#[tokio::test]
async fn open_sse_streams_are_counted_while_they_stream() {
    let provider = crate::provider::FakeProvider::trickling(std::time::Duration::from_millis(100)).await;
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &provider.base_url), ("LLM_REPLY_TIMEOUT_SECONDS", "30")]).await;
    let ada = app.register("Ada").await;
    let session = app.post("/api/v1/chatkit/sessions", Some(&ada.token), json!({})).await;
    let id = session.data(StatusCode::CREATED)["id"].as_str().unwrap().to_owned();
    let streaming = app
        .client
        .post(format!("{}/api/v1/chatkit/sessions/{id}/messages", app.address))
        .bearer_auth(&ada.token)
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(streaming.status(), StatusCode::OK);
    let scrape = scrape(&app.client, &format!("{}/metrics", app.address)).await;
    assert!(value(&scrape, "sse_streams_open", &[("door", "chatkit")]) >= 1.0, "{:?}", scrape.samples.len());
    drop(streaming);
}

#[tokio::test]
async fn the_providers_token_usage_is_counted() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let provider = MockServer::start().await;
    let body = crate::chat::sse(&[
        json!({"choices": [{"index": 0, "delta": {"content": "Hello."}, "finish_reason": "stop"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290}}),
    ]);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .mount(&provider)
        .await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &base)]).await;
    let ada = app.register("Ada").await;
    let reply = app.post("/api/v1/chat", Some(&ada.token), json!({"message": "hi"})).await;
    assert_eq!(reply.data(StatusCode::OK)["message"]["content"], "Hello.");
    let requests = provider.received_requests().await.unwrap();
    let sent: serde_json::Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true, "{sent}");
    // The usage chunk is read after the reply; give it a moment.
    let prompt = [("provider", "openai_compatible"), ("kind", "prompt")];
    let mut counted = 0.0;
    for _ in 0..50 {
        let scrape = scrape(&app.client, &format!("{}/metrics", app.address)).await;
        counted = value(&scrape, "model_tokens_total", &prompt);
        if counted >= 1234.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(counted >= 1234.0, "model_tokens_total{{kind=prompt}} = {counted}");
}
