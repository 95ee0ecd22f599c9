//! Cross-cutting HTTP concerns: request ids and the per-request log span, and
//! the per-request limits.

use std::sync::Arc;

use parley_application::RateLimiter;
use poem::http::HeaderValue;
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";

/// A new request id: 32 hex digits, a random per-process prefix then a
/// counter. Unique within the process and unlikely to repeat across
/// processes, without a random-number system call per request (a UUIDv7
/// cost one; docs/performance.md).
fn new_request_id() -> HeaderValue {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU64, Ordering};

    static PREFIX: LazyLock<u64> = LazyLock::new(|| uuid::Uuid::new_v4().as_u64_pair().0);
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let id = (u128::from(*PREFIX) << 64) | u128::from(COUNTER.fetch_add(1, Ordering::Relaxed));
    // By hand: `format!("{id:032x}")` costs ten times as much.
    let digits: [u8; 32] = std::array::from_fn(|i| b"0123456789abcdef"[(id >> (124 - 4 * i)) as usize & 0xf]);
    HeaderValue::from_bytes(&digits).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Gives every request an id (the client's `X-Request-Id` when it sent a sane
/// one), logs it in a span, and echoes it on the response.
/// Counts it in the metrics under its `route` template, too, unless metrics are off.
pub async fn request_id<E: Endpoint>(next: E, request: Request, route: Option<&'static str>) -> poem::Result<Response> {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.as_bytes().iter().all(u8::is_ascii_graphic))
        .cloned()
        .unwrap_or_else(new_request_id);
    let api = request.uri().path().starts_with("/api/");
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method = %request.method(),
        path = %request.uri().path()
    );
    async move {
        let started = std::time::Instant::now();
        let mut response = match next.call(request).await {
            Ok(response) => response.into_response(),
            Err(error) => crate::error::catch_all(error).await,
        };
        if let Some(route) = route {
            crate::metrics::http_request(&method, route, response.status().as_u16(), started);
        }
        tracing::info!(
            status = response.status().as_u16(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
            "request"
        );
        let headers = response.headers_mut();
        headers.insert(REQUEST_ID, id);
        headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
        if api {
            headers.insert(poem::http::header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Lets CORS answer only cross-origin requests from allowed origins. A
/// same-origin request (Swagger UI at `/docs` writing to the API) and a
/// request from an origin outside `CORS_ORIGINS` lose their `Origin` header
/// and get their normal answer without CORS headers: the browser then blocks
/// what it must, and nothing is ever refused with a 400.
pub async fn cross_origin<E: Endpoint>(
    next: E,
    mut request: Request,
    origins: Arc<crate::config::CorsOrigins>,
) -> poem::Result<Response> {
    use poem::http::header::{HOST, ORIGIN};

    if let Some(origin) = request.headers().get(ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = request
            .headers()
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| request.uri().authority().map(|a| a.as_str()));
        let same_origin = host.is_some_and(|host| {
            origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host)
        });
        let allowed = match origins.as_ref() {
            crate::config::CorsOrigins::Any => true,
            crate::config::CorsOrigins::List(list) => list.iter().any(|o| o == origin),
        };
        if same_origin || !allowed {
            request.headers_mut().remove(ORIGIN);
        }
    }
    next.call(request).await.map(IntoResponse::into_response)
}

/// Bodies over this are refused with 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The per-request limits in one layer (each layer moves the request again):
/// the body size, then the caller's chat budget.
pub async fn limits<E: Endpoint>(
    next: E,
    mut request: Request,
    limiter: Arc<dyn RateLimiter>,
) -> poem::Result<Response> {
    limit_body(&mut request).await?;
    crate::rate_limit::enforce(next, request, limiter.as_ref()).await
}

/// Refuses bodies over [`MAX_BODY_BYTES`] with 413: by a declared
/// `Content-Length` without reading, otherwise (chunked HTTP/1.1, HTTP/2,
/// anything without a length) by reading at most one byte past the limit.
/// hyper holds a declared length to what arrives, so a body that says it is
/// small cannot turn out large.
async fn limit_body(request: &mut Request) -> poem::Result<()> {
    use poem::http::header;
    use tokio::io::AsyncReadExt;

    let too_large = || poem::Error::from_status(poem::http::StatusCode::PAYLOAD_TOO_LARGE);
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).map(str::parse::<u64>);
    match declared {
        Some(Ok(length)) if length > MAX_BODY_BYTES as u64 => Err(too_large()),
        Some(Ok(_)) => Ok(()),
        Some(Err(_)) => Err(poem::Error::from_status(poem::http::StatusCode::BAD_REQUEST)),
        None => {
            let mut buffer = Vec::new();
            let limit = MAX_BODY_BYTES as u64 + 1;
            request
                .take_body()
                .into_async_read()
                .take(limit)
                .read_to_end(&mut buffer)
                .await
                .map_err(|_| poem::Error::from_status(poem::http::StatusCode::BAD_REQUEST))?;
            if buffer.len() > MAX_BODY_BYTES {
                return Err(too_large());
            }
            request.set_body(buffer);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_request_ids_are_32_hex_digits_with_one_prefix_and_never_repeat() {
        let (first, second) = (new_request_id(), new_request_id());
        let (first, second) = (first.to_str().unwrap_or_default(), second.to_str().unwrap_or_default());
        assert_eq!(first.len(), 32, "{first}");
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()), "{first}");
        assert_ne!(first, second);
        assert_eq!(first[..16], second[..16], "one process, one prefix");
    }
}
