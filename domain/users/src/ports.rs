//! Ports of the users domain: storage, password hashing, access tokens.

use async_trait::async_trait;
use parley_kernel::{StoreError, Timestamp, UserId};

use crate::{Credentials, Email, NewUser, Password, PasswordHash, User};

/// Why a user could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores users.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Stores a new user.
    ///
    /// # Errors
    /// - `RegisterError::EmailTaken` if a user already has this email
    ///   (emails are compared lower-cased);
    /// - `RegisterError::Store` if the store fails.
    async fn create(&self, user: NewUser) -> Result<User, RegisterError>;

    /// The user with this email and their password hash, if any.
    ///
    /// # Errors
    /// `StoreError` if the store fails; an unknown email is `Ok(None)`.
    async fn find_by_email(&self, email: &Email) -> Result<Option<Credentials>, StoreError>;

    /// The user with this id, if any.
    ///
    /// # Errors
    /// `StoreError` if the store fails; an unknown id is `Ok(None)`.
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// Answers whether the store is reachable now.
    ///
    /// # Errors
    /// `StoreError::Unavailable` if it is not.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Hashing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot is taken and the wait would be too long: try later.
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed")]
    Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Hashes and verifies passwords (argon2id) away from the async workers.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// # Errors
    /// `HashError::Busy` when saturated, `Unexpected` otherwise.
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError>;

    /// Checks `password` against `hash`; with no hash it checks a dummy one,
    /// spending the same time, so unknown accounts cannot be told apart.
    ///
    /// # Errors
    /// `HashError::Busy` when saturated, `Unexpected` otherwise. A mismatch is `Ok(false)`.
    async fn verify(&self, password: &Password, hash: Option<PasswordHash>) -> Result<bool, HashError>;
}

/// A signed access token and its lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

/// A token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed, tampered or signed with another key")]
    Invalid,
    #[error("token has expired")]
    Expired,
    #[error("token could not be issued")]
    Issue,
}

/// What a valid token says: whose it is and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub user: UserId,
    /// The token's `exp`: it is refused from this instant on.
    pub expires_at: Timestamp,
}

/// Issues and checks access tokens.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait TokenService: Send + Sync {
    /// # Errors
    /// `TokenError::Issue` if the token cannot be built.
    fn issue(&self, user: UserId) -> Result<AccessToken, TokenError>;

    /// The user a valid token was issued to.
    ///
    /// # Errors
    /// `Expired` past its `exp`, `Invalid` for anything else wrong.
    fn verify(&self, token: &str) -> Result<UserId, TokenError>;

    /// The user and expiry of a valid token, for holders that outlive a
    /// request (a WebSocket connection ends when its token does).
    ///
    /// # Errors
    /// `Expired` past its `exp`, `Invalid` for anything else wrong (a token
    /// without `exp` included).
    fn claims(&self, token: &str) -> Result<TokenClaims, TokenError>;
}
