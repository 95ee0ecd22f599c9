//! Prometheus metrics through the `metrics` facade and its Prometheus
//! exporter: recorded where things happen, rendered by `GET /metrics` (on the
//! API port, or on `METRICS_ADDR` when it is set).
//!
//! Labels stay bounded: HTTP requests are labelled by route template (the
//! OpenAPI document's paths, written `/api/v1/tasks/:id` because some text
//! parsers trip on braces in label values) or `other`, never by raw path.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use async_trait::async_trait;
use futures_util::StreamExt;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use parley_conversations::{ChatTurn, LanguageModel, ModelError, ModelStream, ToolSpec};
use parley_users::{HashError, Password, PasswordHash, PasswordHasher};

/// Latency buckets in seconds: 0.5 ms to 60 s.
const BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// How often histogram samples are drained into their buckets between scrapes.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// The process's recorder, installed on first use (tests start many servers in one process).
pub fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            let handle = builder.install_recorder().ok()?;
            // The recorder keeps every histogram sample until it is drained:
            // by a scrape, or here, so a server nobody scrapes does not grow.
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            gauge!("parley_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(handle)
        })
        .as_ref()
}

/// Maps request paths to their route templates.
pub struct Routes {
    /// Each template split at `/`; `None` for a `{parameter}` segment.
    templates: Vec<(&'static str, Vec<Option<String>>)>,
}

impl Routes {
    /// From the templates of the OpenAPI document's paths plus the routes beside it.
    #[must_use]
    pub fn new<'a>(templates: impl IntoIterator<Item = &'a str>) -> Self {
        let templates = templates
            .into_iter()
            .map(|template| {
                let segments = template
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect();
                let label: Vec<String> = template
                    .split('/')
                    .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => format!(":{name}"),
                        None => s.to_owned(),
                    })
                    .collect();
                (&*Box::leak(label.join("/").into_boxed_str()), segments)
            })
            .collect();
        Self { templates }
    }

    /// The template `path` matches, or `other`.
    #[must_use]
    pub fn template(&self, path: &str) -> &'static str {
        let segments: Vec<&str> = path.split('/').collect();
        self.templates
            .iter()
            .find(|(_, template)| {
                template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(t, s)| t.as_deref().is_none_or(|t| t == *s))
            })
            .map_or("other", |(name, _)| name)
    }
}

fn method_label(method: &poem::http::Method) -> &'static str {
    use poem::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts one HTTP request and its latency.
pub fn http_request(method: &poem::http::Method, route: &'static str, status: u16, started: Instant) {
    let method = method_label(method);
    counter!("http_requests_total", "method" => method, "route" => route, "status" => status.to_string()).increment(1);
    histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
}

/// Counts a store failure by kind (`unavailable`, `unexpected`).
pub fn store_error(kind: &'static str) {
    counter!("store_errors_total", "kind" => kind).increment(1);
}

/// Counts a request refused by a limit (`chat`, `login_account`, ...).
pub fn refused(limit: &'static str) {
    counter!("rate_limit_refusals_total", "limit" => limit).increment(1);
}

/// `stream`, counted in `sse_streams_open{door}` for as long as it lives.
pub fn open_sse<S: futures_util::Stream>(door: &'static str, stream: S) -> impl futures_util::Stream<Item = S::Item> {
    /// Leaves the count when the stream is dropped: finished, or its client gone.
    struct Open(&'static str);
    impl Drop for Open {
        fn drop(&mut self) {
            gauge!("sse_streams_open", "door" => self.0).decrement(1.0);
        }
    }
    gauge!("sse_streams_open", "door" => door).increment(1.0);
    let open = Open(door);
    stream.map(move |item| {
        let _ = &open;
        item
    })
}

/// Sets the store pool gauges.
pub fn pool(max: usize, size: usize, idle: usize, waiting: usize) {
    #[allow(clippy::cast_precision_loss)] // pool sizes are small
    for (state, value) in [("max", max), ("size", size), ("idle", idle), ("waiting", waiting)] {
        gauge!("store_pool_connections", "state" => state).set(value as f64);
    }
}

/// A language model that counts its requests, errors and latency by provider.
pub struct MeteredModel {
    inner: Arc<dyn LanguageModel>,
    provider: &'static str,
}

impl MeteredModel {
    #[must_use]
    pub fn new(inner: Arc<dyn LanguageModel>, provider: &'static str) -> Self {
        Self { inner, provider }
    }
}

#[async_trait]
impl LanguageModel for MeteredModel {
    async fn stream(&self, history: &[ChatTurn], tools: Vec<ToolSpec>) -> Result<ModelStream, ModelError> {
        let provider = self.provider;
        let started = Instant::now();
        counter!("model_requests_total", "provider" => provider).increment(1);
        let stream = match self.inner.stream(history, tools).await {
            Ok(stream) => stream,
            Err(error) => {
                counter!("model_errors_total", "provider" => provider).increment(1);
                return Err(error);
            }
        };
        let mut failed = false;
        let metered = stream.inspect(move |item| {
            if item.is_err() && !failed {
                failed = true;
                counter!("model_errors_total", "provider" => provider).increment(1);
            }
        });
        let timed = metered.chain(futures_util::stream::poll_fn(move |_| {
            histogram!("model_request_duration_seconds", "provider" => provider)
                .record(started.elapsed().as_secs_f64());
            std::task::Poll::Ready(None)
        }));
        Ok(Box::pin(timed))
    }
}

/// A password hasher that counts refusals (saturation) and hashes in flight.
pub struct MeteredHasher {
    inner: Arc<dyn PasswordHasher>,
}

impl MeteredHasher {
    #[must_use]
    pub fn new(inner: Arc<dyn PasswordHasher>) -> Self {
        Self { inner }
    }

    async fn metered<T>(&self, work: impl Future<Output = Result<T, HashError>>) -> Result<T, HashError> {
        gauge!("password_hash_in_flight").increment(1.0);
        let outcome = work.await;
        gauge!("password_hash_in_flight").decrement(1.0);
        if matches!(outcome, Err(HashError::Busy)) {
            counter!("password_hash_refusals_total").increment(1);
        }
        outcome
    }
}

#[async_trait]
impl PasswordHasher for MeteredHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        self.metered(self.inner.hash(password)).await
    }

    async fn verify(&self, password: &Password, hash: Option<PasswordHash>) -> Result<bool, HashError> {
        self.metered(self.inner.verify(password, hash)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_templates_and_strangers_to_other() {
        let routes = Routes::new(["/api/v1/tasks", "/api/v1/tasks/{id}", "/api/v1/tasks/{id}/complete", "/health"]);
        assert_eq!(routes.template("/api/v1/tasks"), "/api/v1/tasks");
        assert_eq!(routes.template("/api/v1/tasks/0190-abc"), "/api/v1/tasks/:id");
        assert_eq!(routes.template("/api/v1/tasks/x/complete"), "/api/v1/tasks/:id/complete");
        assert_eq!(routes.template("/api/v1/tasks/x/y"), "other");
        assert_eq!(routes.template("/random/junk"), "other");
    }
}
