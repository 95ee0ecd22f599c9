//! `/api/v1/auth`: register, login, me.

use std::sync::Arc;

use parley_application::{AuthError, AuthService, Registration, SignedIn};
use parley_users::{DisplayName, Email, Password, User};
use poem::http::StatusCode;
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use poem::web::RemoteAddr;

use crate::abuse::AuthThrottle;
use crate::api::ApiTags;
use crate::api::schema::{EmailText, Text};
use crate::body::JsonBody;
use crate::envelope::{Envelope, FieldError, Time, ok};
use crate::error::{ApiError, Failure, error_set};
use crate::security::BearerAuth;

pub struct AuthApi {
    pub auth: Arc<AuthService>,
    pub throttle: Arc<AuthThrottle>,
}

/// 429 for a spent login or registration budget.
fn throttled(retry_after: u64) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED", "Too many attempts; try again later")
        .with_details(serde_json::json!({ "retry_after": retry_after }))
        .retry_after(retry_after)
}

fn address(remote: &RemoteAddr) -> Option<std::net::IpAddr> {
    remote.as_socket_addr().map(std::net::SocketAddr::ip)
}

/// A new account.
#[derive(Debug, Object)]
#[oai(example)]
pub struct RegisterBody {
    /// A valid email, at most 254 characters; stored lower-cased.
    pub email: EmailText,
    /// 8 to 128 characters.
    pub password: Text<8, 128>,
    /// 1 to 100 characters after trimming.
    pub name: Text<1, 100, true>,
}

impl Example for RegisterBody {
    fn example() -> Self {
        Self {
            email: EmailText("ada@example.com".to_owned()),
            password: Text("correct horse battery".to_owned()),
            name: Text("Ada Lovelace".to_owned()),
        }
    }
}

/// Email and password of an account.
#[derive(Debug, Object)]
#[oai(example)]
pub struct LoginBody {
    pub email: Text<0, 0>,
    pub password: Text<0, 0>,
}

impl Example for LoginBody {
    fn example() -> Self {
        Self { email: Text("ada@example.com".to_owned()), password: Text("correct horse battery".to_owned()) }
    }
}

/// An account; the password hash never leaves the server.
#[derive(Debug, Object)]
#[oai(example)]
pub struct UserDto {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: Time,
}

impl Example for UserDto {
    fn example() -> Self {
        Self {
            id: "01936a4e-7b2d-7c1e-8f3a-1b2c3d4e5f60".to_owned(),
            email: "ada@example.com".to_owned(),
            name: "Ada Lovelace".to_owned(),
            created_at: crate::envelope::Time(chrono::DateTime::UNIX_EPOCH),
        }
    }
}

impl From<User> for UserDto {
    fn from(user: User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.to_string(),
            name: user.name.to_string(),
            created_at: user.created_at.into(),
        }
    }
}

/// The user and a fresh access token.
#[derive(Debug, Object)]
#[oai(example)]
pub struct AuthData {
    pub user: UserDto,
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
}

impl Example for AuthData {
    fn example() -> Self {
        Self {
            user: UserDto::example(),
            access_token: "v4.local.…".to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: 3600,
        }
    }
}

impl From<SignedIn> for AuthData {
    fn from(signed_in: SignedIn) -> Self {
        Self {
            user: signed_in.user.into(),
            access_token: signed_in.token.token,
            token_type: "Bearer".to_owned(),
            expires_in: signed_in.token.expires_in,
        }
    }
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    /// Registered; the data holds the user and an access token.
    #[oai(status = 201)]
    Created(Json<Envelope<AuthData>>),
}

#[derive(ApiResponse)]
pub enum LoginResponse {
    /// Logged in.
    #[oai(status = 200)]
    Ok(Json<Envelope<AuthData>>),
}

#[derive(ApiResponse)]
pub enum MeResponse {
    /// The caller.
    #[oai(status = 200)]
    Ok(Json<Envelope<UserDto>>),
}

impl TryFrom<RegisterBody> for Registration {
    type Error = ApiError;

    fn try_from(body: RegisterBody) -> Result<Self, ApiError> {
        let email = Email::parse(&body.email.0);
        let password = Password::parse(body.password.as_str());
        let name = DisplayName::parse(body.name.as_str());
        match (email, password, name) {
            (Ok(email), Ok(password), Ok(name)) => Ok(Self { email, password, name }),
            (email, password, name) => {
                let errors = [
                    email.err().map(|e| ("email", e.to_string())),
                    password.err().map(|e| ("password", e.to_string())),
                    name.err().map(|e| ("name", e.to_string())),
                ];
                Err(ApiError::validation(
                    errors
                        .into_iter()
                        .flatten()
                        .map(|(field, message)| FieldError { field: field.into(), message })
                        .collect(),
                ))
            }
        }
    }
}

fn auth_error(error: AuthError) -> ApiError {
    match error {
        AuthError::EmailTaken => {
            ApiError::new(StatusCode::CONFLICT, "EMAIL_TAKEN", "An account with this email already exists")
        }
        AuthError::InvalidCredentials => {
            ApiError::new(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "Invalid email or password")
        }
        AuthError::UnknownUser => ApiError::unauthorized("The access token's user no longer exists"),
        AuthError::Busy => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_BUSY", "Too many logins at once; try again shortly")
                .retry_after(1)
        }
        AuthError::Store(store) => crate::error::store_error(&store),
        AuthError::Hashing(e) => ApiError::internal(&e),
        AuthError::Token(e) => ApiError::internal(&e),
    }
}

error_set! {
    /// `POST /auth/register`.
    RegisterErrors: VALIDATION, EMAIL_TAKEN, TOO_LARGE, TOO_MANY_ATTEMPTS, INTERNAL, BUSY;
    /// `POST /auth/login`.
    LoginErrors: VALIDATION, CREDENTIALS, TOO_LARGE, TOO_MANY_ATTEMPTS, INTERNAL, BUSY;
    /// `GET /auth/me`.
    MeErrors: UNAUTHORIZED, INTERNAL, DATABASE;
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Register a new account.
    #[oai(path = "/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        body: JsonBody<RegisterBody>,
        remote: &RemoteAddr,
    ) -> Result<RegisterResponse, Failure<RegisterErrors>> {
        let registration = Registration::try_from(body.0)?;
        self.throttle.registration(address(remote)).map_err(throttled)?;
        let signed_in = self.auth.register(registration).await.map_err(auth_error)?;
        Ok(RegisterResponse::Created(ok(signed_in.into())))
    }

    /// Log in with email and password.
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        body: JsonBody<LoginBody>,
        remote: &RemoteAddr,
    ) -> Result<LoginResponse, Failure<LoginErrors>> {
        let (email, password) = (body.0.email.as_str().to_owned(), body.0.password.as_str().to_owned());
        self.throttle.login_attempt(address(remote), &email).map_err(throttled)?;
        match self.auth.login(&email, &password).await {
            Ok(signed_in) => Ok(LoginResponse::Ok(ok(signed_in.into()))),
            Err(AuthError::InvalidCredentials) => {
                self.throttle.login_failed(&email);
                Err(auth_error(AuthError::InvalidCredentials).into())
            }
            Err(error) => Err(auth_error(error).into()),
        }
    }

    /// The current user.
    #[oai(path = "/me", method = "get", operation_id = "get_me")]
    async fn me(&self, caller: BearerAuth) -> Result<MeResponse, Failure<MeErrors>> {
        let user = self.auth.me(caller.0).await.map_err(auth_error)?;
        Ok(MeResponse::Ok(ok(user.into())))
    }
}
