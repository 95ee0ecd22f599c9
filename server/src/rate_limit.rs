//! The in-process `RateLimiter` (GCRA via governor, keyed by user) and the
//! middleware that spends it on chat and ChatKit requests.

use std::num::NonZeroU32;

use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};
use parley_application::{RateDecision, RateLimiter};
use parley_kernel::UserId;
use poem::http::{HeaderValue, Method, StatusCode};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::error::ApiError;

type Keyed = Governor<UserId, DefaultKeyedStateStore<UserId>, DefaultClock, StateInformationMiddleware>;

/// `per_minute` requests a minute per user, refilled evenly.
pub struct GovernorRateLimiter {
    limiter: Keyed,
    per_minute: u32,
}

impl GovernorRateLimiter {
    #[must_use]
    pub fn new(per_minute: NonZeroU32) -> Self {
        let limiter = Governor::keyed(Quota::per_minute(per_minute)).with_middleware::<StateInformationMiddleware>();
        Self { limiter, per_minute: per_minute.get() }
    }

    fn seconds_per_request(&self) -> f64 {
        60.0 / f64::from(self.per_minute)
    }
}

#[async_trait::async_trait]
impl RateLimiter for GovernorRateLimiter {
    async fn check(&self, user: UserId) -> RateDecision {
        let refill = |missing: u32| (f64::from(missing) * self.seconds_per_request()).ceil() as u64;
        match self.limiter.check_key(&user) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                RateDecision {
                    allowed: true,
                    limit: self.per_minute,
                    remaining,
                    reset_seconds: refill(self.per_minute - remaining),
                    retry_after_seconds: 0,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                RateDecision {
                    allowed: false,
                    limit: self.per_minute,
                    remaining: 0,
                    reset_seconds: refill(self.per_minute),
                    retry_after_seconds: wait.as_secs_f64().ceil().max(1.0) as u64,
                }
            }
        }
    }
}

/// Requests that spend the budget: `POST /api/v1/chat` and all of ChatKit.
fn is_budgeted(method: &Method, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    (method == Method::POST && path == "/api/v1/chat")
        || path == "/api/v1/chatkit"
        || path.starts_with("/api/v1/chatkit/")
}

/// Spends one request of the caller's budget on budgeted routes; answers 429
/// past it, and adds `RateLimit-*` headers to every answer within it.
/// Unauthenticated requests pass through to get their 401.
pub async fn enforce<E: Endpoint>(next: E, request: Request, limiter: &dyn RateLimiter) -> poem::Result<Response> {
    let caller =
        if is_budgeted(request.method(), request.uri().path()) { crate::security::caller(&request) } else { None };
    let Some(user) = caller else {
        return next.call(request).await.map(IntoResponse::into_response);
    };
    let decision = limiter.check(user).await;
    let mut response = if decision.allowed {
        next.call(request).await.map(IntoResponse::into_response)?
    } else {
        crate::metrics::refused("chat");
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too many requests; slow down")
            .with_details(serde_json::json!({ "limit": decision.limit, "retry_after": decision.retry_after_seconds }))
            .retry_after(decision.retry_after_seconds)
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(decision.reset_seconds));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn budget_runs_out_then_refuses_with_retry_after() {
        let limiter = GovernorRateLimiter::new(NonZeroU32::MIN.saturating_add(2));
        let user = UserId::new();
        let mut remaining = Vec::new();
        for _ in 0..3 {
            remaining.push(limiter.check(user).await.remaining);
        }
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limiter.check(user).await;
        assert!(!refused.allowed);
        assert!(refused.retry_after_seconds >= 1 && refused.retry_after_seconds <= 20);
        assert!(limiter.check(UserId::new()).await.allowed, "budgets are per user");
    }

    #[test]
    fn only_chat_and_chatkit_are_budgeted() {
        assert!(is_budgeted(&Method::POST, "/api/v1/chat"));
        assert!(is_budgeted(&Method::GET, "/api/v1/chatkit/sessions"));
        assert!(is_budgeted(&Method::DELETE, "/api/v1/chatkit/sessions/x"));
        assert!(!is_budgeted(&Method::GET, "/api/v1/chat/conversations"));
        assert!(!is_budgeted(&Method::POST, "/api/v1/tasks"));
    }
}
