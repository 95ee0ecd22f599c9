//! The `Allow` header of a `405 Method Not Allowed` (RFC 9110 §15.5.6): the
//! methods each route serves, read once at start-up from the OpenAPI document
//! plus the routes served beside it.

use poem::Response;
use poem::http::{HeaderValue, StatusCode, header};
use serde_json::Value;

/// The methods served per route template (`/api/v1/tasks/{id}`).
#[derive(Debug, Default)]
pub struct AllowedMethods {
    routes: Vec<(Vec<Segment>, HeaderValue)>,
}

#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Parameter,
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_matches('/').split('/').filter(|s| !s.is_empty())
}

impl AllowedMethods {
    /// Every path of `spec` (an OpenAPI document) with its operations' methods,
    /// plus `extra` routes (those served outside the document) with theirs.
    pub fn from_spec(spec: &Value, extra: &[(&str, &[&str])]) -> Self {
        let mut table = Self::default();
        if let Some(paths) = spec.get("paths").and_then(Value::as_object) {
            for (path, operations) in paths {
                let methods: Vec<String> = operations
                    .as_object()
                    .map(|ops| ops.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                table.add(path, methods);
            }
        }
        for (path, methods) in extra {
            table.add(path, methods.iter().map(|m| (*m).to_owned()).collect());
        }
        table
    }

    fn add(&mut self, path: &str, mut methods: Vec<String>) {
        const ORDER: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
        if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
            methods.push("HEAD".to_owned()); // poem answers HEAD wherever it answers GET
        }
        methods.sort_by_key(|m| ORDER.iter().position(|o| o == m).unwrap_or(ORDER.len()));
        methods.dedup();
        let template = segments(path)
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') { Segment::Parameter } else { Segment::Literal(s.to_owned()) }
            })
            .collect();
        if let Ok(value) = HeaderValue::from_str(&methods.join(", ")) {
            self.routes.push((template, value));
        }
    }

    /// The `Allow` value for a concrete request path, if a route matches it.
    pub fn for_path(&self, path: &str) -> Option<&HeaderValue> {
        let parts: Vec<&str> = segments(path).collect();
        let matches = |template: &[Segment]| {
            template.len() == parts.len()
                && template.iter().zip(&parts).all(|(segment, part)| match segment {
                    Segment::Parameter => true,
                    Segment::Literal(literal) => literal == part,
                })
        };
        // A literal route wins over a parameter at the same place (`/sessions` vs `/{id}`).
        self.routes
            .iter()
            .filter(|(template, _)| matches(template))
            .max_by_key(|(template, _)| template.iter().filter(|s| matches!(s, Segment::Literal(_))).count())
            .map(|(_, value)| value)
    }

    /// Adds `Allow` to a 405 answer for `path`.
    pub fn annotate(&self, path: &str, mut response: Response) -> Response {
        if response.status() == StatusCode::METHOD_NOT_ALLOWED
            && !response.headers().contains_key(header::ALLOW)
            && let Some(allow) = self.for_path(path)
        {
            response.headers_mut().insert(header::ALLOW, allow.clone());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn table() -> AllowedMethods {
        let spec = json!({"paths": {
            "/api/v1/tasks": {"get": {}, "post": {}},
            "/api/v1/tasks/{id}": {"get": {}, "put": {}, "delete": {}},
            "/api/v1/tasks/{id}/complete": {"patch": {}},
        }});
        AllowedMethods::from_spec(&spec, &[("/api/v1/sessions/{id}/ws", &["GET"])])
    }

    #[test]
    fn allow_lists_the_methods_of_the_matching_route() {
        let table = table();
        let allow = |path| table.for_path(path).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(allow("/api/v1/tasks").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(allow("/api/v1/tasks/").as_deref(), Some("GET, HEAD, POST"));
        assert_eq!(allow("/api/v1/tasks/abc").as_deref(), Some("GET, HEAD, PUT, DELETE"));
        assert_eq!(allow("/api/v1/tasks/abc/complete").as_deref(), Some("PATCH"));
        assert_eq!(allow("/api/v1/sessions/abc/ws").as_deref(), Some("GET, HEAD"));
        assert_eq!(allow("/api/v1/nothing"), None);
    }

    #[test]
    fn only_a_405_gets_the_header() {
        let table = table();
        let refused =
            table.annotate("/api/v1/tasks", Response::builder().status(StatusCode::METHOD_NOT_ALLOWED).finish());
        assert_eq!(refused.headers().get(header::ALLOW).and_then(|v| v.to_str().ok()), Some("GET, HEAD, POST"));
        let fine = table.annotate("/api/v1/tasks", Response::builder().status(StatusCode::OK).finish());
        assert!(fine.headers().get(header::ALLOW).is_none());
    }
}
