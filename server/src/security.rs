//! Bearer authentication: the token is checked by the `TokenService` port.

use std::sync::Arc;

use parley_application::AuthService;
use parley_kernel::UserId;
use parley_users::TokenError;
use poem::Request;
use poem_openapi::SecurityScheme;
use poem_openapi::auth::Bearer;

use crate::error::ApiError;

/// `Authorization: Bearer <PASETO v4.local token>`.
#[derive(SecurityScheme)]
#[oai(ty = "bearer", bearer_format = "PASETO v4.local", checker = "check_token")]
pub struct BearerAuth(pub UserId);

async fn check_token(request: &Request, bearer: Bearer) -> poem::Result<UserId> {
    let auth = request
        .data::<Arc<AuthService>>()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("AuthService missing from request data")))?;
    auth.authenticate(&bearer.token).map_err(|error| {
        let message = match error {
            TokenError::Expired => "The access token has expired",
            TokenError::Invalid | TokenError::Issue => "The access token is invalid",
        };
        ApiError::unauthorized(message).into()
    })
}
