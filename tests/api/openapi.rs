//! The generated OpenAPI document, the doc UIs, and the committed copy.

use reqwest::StatusCode;

use crate::support::TestApp;

#[tokio::test]
async fn openapi_document_describes_the_api() {
    let app = TestApp::spawn().await;
    let spec = app.get("/openapi.json", None).await;
    assert_eq!(spec.status, StatusCode::OK);
    assert!(spec.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for path in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/me",
        "/api/v1/tasks",
        "/api/v1/tasks/{id}",
        "/health",
    ] {
        assert!(spec.body["paths"].get(path).is_some(), "{path} missing from the document");
    }
    assert!(spec.body["components"]["securitySchemes"].as_object().is_some_and(|s| !s.is_empty()));
    let yaml = app.client.get(format!("{}/openapi.yaml", app.address)).send().await.expect("answers");
    assert_eq!(yaml.status(), StatusCode::OK);
}

#[tokio::test]
async fn swagger_ui_and_redoc_are_served() {
    let app = TestApp::spawn().await;
    for path in ["/docs", "/redoc"] {
        let page = app.client.get(format!("{}{path}", app.address)).send().await.expect("answers");
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert!(page.text().await.unwrap_or_default().contains("<html"), "{path}");
    }
}

#[test]
fn committed_openapi_yaml_matches_the_code() {
    let generated = parley_server::openapi_yaml();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml")).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/openapi.yaml is stale: run `cargo run -p parley-server -- openapi > docs/openapi.yaml`"
    );
}

#[tokio::test]
async fn openapi_every_operation_has_an_operation_id_and_only_its_own_errors() {
    let app = TestApp::spawn().await;
    let spec = app.get("/openapi.json", None).await.body;
    let mut ids = std::collections::HashSet::new();
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "{id} twice");
            for (status, response) in operation["responses"].as_object().expect("responses") {
                if !path.starts_with("/health") && (status.starts_with('4') || status.starts_with('5')) {
                    let example = &response["content"]["application/json; charset=utf-8"]["schema"]["example"];
                    assert!(example["error"]["code"].is_string(), "{id} {status}: no example code");
                }
            }
        }
    }
    for id in ["register", "login", "get_me", "list_tasks", "create_task", "get_task", "update_task", "complete_task"] {
        assert!(ids.contains(id), "{id} missing");
    }
    let responses = |path: &str, method: &str| -> Vec<String> {
        spec["paths"][path][method]["responses"].as_object().map(|r| r.keys().cloned().collect()).unwrap_or_default()
    };
    assert!(!responses("/api/v1/tasks/{id}", "get").contains(&"409".to_owned()), "get_task cannot conflict");
    assert!(responses("/api/v1/auth/register", "post").contains(&"409".to_owned()));
    assert!(!responses("/api/v1/auth/register", "post").contains(&"403".to_owned()));
    let sse = &spec["paths"]["/api/v1/chatkit/sessions/{id}/messages"]["post"]["responses"]["200"]["content"];
    assert!(sse.get("text/event-stream").is_some(), "{sse}");
}

#[tokio::test]
async fn openapi_nullable_fields_enums_and_bounds_are_in_the_schema() {
    let app = TestApp::spawn().await;
    let spec = app.get("/openapi.json", None).await.body;
    let schemas = &spec["components"]["schemas"];
    for (schema, field) in [
        ("TaskDto", "due_at"),
        ("TaskDto", "completed_at"),
        ("SessionDto", "closed_at"),
        ("SessionMessageDto", "user_id"),
        ("ToolCallDto", "result"),
        ("PageMeta", "next_cursor"),
        ("ChatBody", "conversation_id"),
    ] {
        assert_eq!(schemas[schema]["properties"][field]["nullable"], true, "{schema}.{field}");
    }
    assert_eq!(schemas["TaskDto"]["properties"]["priority"]["$ref"], "#/components/schemas/PriorityDto");
    assert_eq!(schemas["CreateSessionBody"]["properties"]["max_users"]["minimum"], 2.0);
    assert_eq!(schemas["CreateSessionBody"]["properties"]["max_users"]["maximum"], 50.0);
    assert_eq!(schemas["RegisterBody"]["properties"]["password"]["minLength"], 8);
    assert_eq!(schemas["RegisterBody"]["properties"]["password"]["maxLength"], 128);
    let limit = spec["paths"]["/api/v1/tasks"]["get"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
        .expect("limit")
        .clone();
    assert_eq!((limit["schema"]["minimum"].clone(), limit["schema"]["maximum"].clone()), (1.0.into(), 100.0.into()));
}

#[tokio::test]
async fn openapi_method_not_allowed_carries_allow() {
    let app = TestApp::spawn().await;
    for (path, allow) in [
        ("/api/v1/tasks", "GET, HEAD, POST"),
        ("/api/v1/tasks/01936a4e-8f1c-7d2a-9b3e-5f6a7b8c9d0e/complete", "PATCH"),
        ("/health", "GET, HEAD"),
    ] {
        let reply = app.request(reqwest::Method::TRACE, path, None, None).await;
        reply.assert_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
        assert_eq!(reply.headers.get("allow").and_then(|v| v.to_str().ok()), Some(allow), "{path}");
    }
}

#[tokio::test]
async fn openapi_wrong_types_nul_and_null_are_validation_errors_naming_each_field() {
    let app = TestApp::spawn().await;
    let user = app.register("strict").await;
    let token = Some(user.token.as_str());
    let body = serde_json::json!({"title": 5, "description": "a\u{0}b", "priority": null, "due_at": null});
    let reply = app.post("/api/v1/tasks", token, body).await;
    reply.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(reply.bad_fields(), ["title", "description", "priority"]);
    let reply = app.post("/api/v1/sessions", token, serde_json::json!({"name": "", "max_users": "6"})).await;
    reply.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert!(reply.bad_fields().contains(&"max_users".to_owned()), "{}", reply.body);
    let reply = app.get("/api/v1/tasks?q=a%00b&limit=0", token).await;
    reply.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(reply.bad_fields(), ["q", "limit"]);
    let listed = app.get("/api/v1/tasks", token).await;
    assert!(listed.body["meta"].as_object().is_some_and(|m| m.contains_key("next_cursor")), "always present");
}
