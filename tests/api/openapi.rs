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
    let generated = parley_server::openapi_yaml().expect("the document generates");
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml")).unwrap_or_default();
    assert!(
        generated == committed,
        "docs/openapi.yaml is stale: run `cargo run -p parley-server -- openapi > docs/openapi.yaml`"
    );
}
