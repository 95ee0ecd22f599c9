//! Bearer authentication: the token is checked by the `TokenService` port.
//!
//! [`bearer_token`] is the one place the `Authorization` header is read:
//! the security scheme, the chat budget and the WebSocket upgrade all use it,
//! so that they can never disagree about who is calling.

use std::sync::Arc;

use parley_application::{AuthService, CallerError};
use parley_kernel::UserId;
use parley_users::TokenError;
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::error::ApiError;

/// The token of an `Authorization: Bearer <token>` header; the scheme is
/// matched case-insensitively (RFC 9110, section 11.1). Never logged.
#[must_use]
pub fn bearer_token(headers: &poem::http::HeaderMap) -> Option<&str> {
    let value = headers.get(poem::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The caller a request's bearer token names, if it is valid now.
pub fn caller(request: &Request) -> Option<UserId> {
    let token = bearer_token(request.headers())?;
    request.data::<Arc<AuthService>>()?.authenticate(token).ok()
}

/// `Authorization: Bearer <PASETO v4.local token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "PASETO v4.local", checker = "check_token")]
pub struct BearerAuth(pub UserId);

async fn check_token(request: &Request, _scheme: Bearer) -> poem::Result<UserId> {
    let auth = request
        .data::<Arc<AuthService>>()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("AuthService missing from request data")))?;
    let token = bearer_token(request.headers()).ok_or_else(|| ApiError::unauthorized("A bearer token is required"))?;
    auth.caller(token).await.map_err(|error| {
        let message = match error {
            CallerError::Token(TokenError::Expired) => "The access token has expired",
            CallerError::Token(TokenError::Invalid | TokenError::Issue) => "The access token is invalid",
            CallerError::UnknownUser => "The access token's user no longer exists",
            CallerError::Store(store) => return crate::error::store_error(&store).into(),
        };
        ApiError::unauthorized(message).into()
    })
}

#[cfg(test)]
mod tests {
    use poem::http::{HeaderMap, HeaderValue, header::AUTHORIZATION};

    use super::*;

    fn token_of(value: &'static str) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
        bearer_token(&headers).map(str::to_owned)
    }

    #[test]
    fn the_scheme_is_matched_case_insensitively() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR  abc "] {
            assert_eq!(token_of(value).as_deref(), Some("abc"), "{value:?}");
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_not_bearer_tokens() {
        for value in ["Basic abc", "Bearer", "Bearer   ", "Bearerabc", "abc"] {
            assert_eq!(token_of(value), None, "{value:?}");
        }
    }
}
