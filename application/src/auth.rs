//! Register, log in, and resolve the caller of a token.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use parley_kernel::{Clock, StoreError, Timestamp, UserId};
use parley_users::{
    AccessToken, DisplayName, Email, HashError, NewUser, Password, PasswordHasher, RegisterError, TokenClaims,
    TokenError, TokenService, User, UserRepository,
};

/// A parsed registration request.
#[derive(Debug, Clone)]
pub struct Registration {
    pub email: Email,
    pub password: Password,
    pub name: DisplayName,
}

/// A signed-in user and their access token.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub token: AccessToken,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid email or password")]
    InvalidCredentials,
    /// The token is fine but its user no longer exists.
    #[error("unknown user")]
    UnknownUser,
    #[error("password hashing is saturated")]
    Busy,
    #[error("password hashing failed")]
    Hashing(#[source] HashError),
    #[error("token could not be issued")]
    Token(#[source] TokenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a bearer token names no caller.
#[derive(Debug, thiserror::Error)]
pub enum CallerError {
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The token is valid but its user is no longer in the store.
    #[error("unknown user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How long a user found in the store is taken to still be there: a user
/// removed by an operator is refused at most this long after the removal,
/// and an active user costs one look-up per this interval, not one per
/// request.
pub const KNOWN_USER_TTL: chrono::TimeDelta = chrono::TimeDelta::seconds(5);

/// Past this many remembered users the memory is emptied and refilled.
const KNOWN_USERS_MAX: usize = 100_000;

impl From<HashError> for AuthError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Busy,
            other => Self::Hashing(other),
        }
    }
}

pub struct AuthService {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenService>,
    clock: Arc<dyn Clock>,
    /// Users found in the store, and when.
    known: Mutex<HashMap<UserId, Timestamp>>,
}

impl AuthService {
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { users, hasher, tokens, clock, known: Mutex::new(HashMap::new()) }
    }

    /// # Errors
    /// `EmailTaken`, `Busy`, or an infrastructure failure.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, registration: Registration) -> Result<SignedIn, AuthError> {
        let password_hash = self.hasher.hash(&registration.password).await?;
        let new = NewUser {
            id: UserId::new(),
            email: registration.email,
            name: registration.name,
            password_hash,
            created_at: self.clock.now(),
        };
        let user = self.users.create(new).await.map_err(|e| match e {
            RegisterError::EmailTaken => AuthError::EmailTaken,
            RegisterError::Store(store) => AuthError::Store(store),
        })?;
        self.signed_in(user)
    }

    /// Unknown email and wrong password get the same answer in the same time.
    ///
    /// # Errors
    /// `InvalidCredentials`, `Busy`, or an infrastructure failure.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: &str, password: &str) -> Result<SignedIn, AuthError> {
        let password = Password::unchecked(password);
        let credentials = match Email::parse(email) {
            Ok(email) => self.users.find_by_email(&email).await?,
            Err(_) => None,
        };
        let (user, hash) = credentials.map(|c| (c.user, c.password_hash)).unzip();
        let verified = self.hasher.verify(&password, hash).await?;
        match user {
            Some(user) if verified => self.signed_in(user),
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// The user a token belongs to.
    ///
    /// # Errors
    /// `UnknownUser` if that user no longer exists, or a store failure.
    pub async fn me(&self, user: UserId) -> Result<User, AuthError> {
        self.users.get(user).await?.ok_or(AuthError::UnknownUser)
    }

    /// The caller a bearer token identifies.
    ///
    /// # Errors
    /// `TokenError::Invalid` or `TokenError::Expired`.
    pub fn authenticate(&self, token: &str) -> Result<UserId, TokenError> {
        self.tokens.verify(token)
    }

    /// The caller of a bearer token that is valid now and whose user is
    /// still in the store (looked up at most once per [`KNOWN_USER_TTL`]).
    ///
    /// # Errors
    /// `Token` for a bad or expired token, `UnknownUser` for a removed
    /// user, `Store` if the look-up fails.
    pub async fn caller(&self, token: &str) -> Result<UserId, CallerError> {
        let id = self.tokens.verify(token)?;
        let now = self.clock.now();
        let known = self.known.lock().map_or(None, |known| known.get(&id).copied());
        if known.is_some_and(|seen| now - seen < KNOWN_USER_TTL) {
            return Ok(id);
        }
        if self.users.get(id).await?.is_none() {
            if let Ok(mut known) = self.known.lock() {
                known.remove(&id);
            }
            return Err(CallerError::UnknownUser);
        }
        if let Ok(mut known) = self.known.lock() {
            if known.len() >= KNOWN_USERS_MAX {
                known.clear();
            }
            known.insert(id, now);
        }
        Ok(id)
    }

    /// The caller a bearer token identifies, and when the token expires.
    ///
    /// # Errors
    /// `TokenError::Invalid` or `TokenError::Expired`.
    pub fn authenticate_until(&self, token: &str) -> Result<TokenClaims, TokenError> {
        self.tokens.claims(token)
    }

    fn signed_in(&self, user: User) -> Result<SignedIn, AuthError> {
        let token = self.tokens.issue(user.id).map_err(AuthError::Token)?;
        Ok(SignedIn { user, token })
    }
}

#[cfg(test)]
mod tests {
    use parley_kernel::MockClock;
    use parley_users::{Credentials, MockPasswordHasher, MockTokenService, MockUserRepository, PasswordHash};

    use super::*;

    fn user() -> User {
        User {
            id: UserId::new(),
            email: Email::parse("ada@example.com").unwrap_or_else(|_| unreachable!()),
            name: DisplayName::parse("Ada").unwrap_or_else(|_| unreachable!()),
            created_at: chrono::Utc::now(),
        }
    }

    fn clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        clock.expect_now().returning(chrono::Utc::now);
        Arc::new(clock)
    }

    fn tokens() -> Arc<MockTokenService> {
        let mut tokens = MockTokenService::new();
        tokens.expect_issue().returning(|id| Ok(AccessToken { token: format!("token-for-{id}"), expires_in: 60 }));
        Arc::new(tokens)
    }

    #[tokio::test]
    async fn register_stores_the_hash_not_the_password() {
        let mut users = MockUserRepository::new();
        users
            .expect_create()
            .withf(|new| new.password_hash.as_str() == "hashed" && new.email.as_str() == "ada@example.com")
            .returning(|new| Ok(User { id: new.id, email: new.email, name: new.name, created_at: new.created_at }));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_hash().returning(|_| Ok(PasswordHash::new("hashed".into())));
        let service = AuthService::new(Arc::new(users), Arc::new(hasher), tokens(), clock());
        let registration = Registration {
            email: Email::parse("Ada@Example.com").unwrap_or_else(|_| unreachable!()),
            password: Password::parse("long enough").unwrap_or_else(|_| unreachable!()),
            name: DisplayName::parse("Ada").unwrap_or_else(|_| unreachable!()),
        };
        let signed_in = service.register(registration).await;
        assert!(signed_in.is_ok_and(|s| s.token.token == format!("token-for-{}", s.user.id)));
    }

    #[tokio::test]
    async fn register_duplicate_is_email_taken() {
        let mut users = MockUserRepository::new();
        users.expect_create().returning(|_| Err(RegisterError::EmailTaken));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_hash().returning(|_| Ok(PasswordHash::new("hashed".into())));
        let service = AuthService::new(Arc::new(users), Arc::new(hasher), tokens(), clock());
        let registration = Registration {
            email: Email::parse("ada@example.com").unwrap_or_else(|_| unreachable!()),
            password: Password::parse("long enough").unwrap_or_else(|_| unreachable!()),
            name: DisplayName::parse("Ada").unwrap_or_else(|_| unreachable!()),
        };
        assert!(matches!(service.register(registration).await, Err(AuthError::EmailTaken)));
    }

    #[tokio::test]
    async fn unknown_email_still_verifies_against_a_dummy_hash() {
        let mut users = MockUserRepository::new();
        users.expect_find_by_email().returning(|_| Ok(None));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().times(1).withf(|_, hash| hash.is_none()).returning(|_, _| Ok(false));
        let service = AuthService::new(Arc::new(users), Arc::new(hasher), tokens(), clock());
        assert!(matches!(service.login("nobody@example.com", "whatever1").await, Err(AuthError::InvalidCredentials)));
    }

    #[tokio::test]
    async fn wrong_password_and_right_password() {
        let known = user();
        let mut users = MockUserRepository::new();
        let stored = known.clone();
        users.expect_find_by_email().returning(move |_| {
            Ok(Some(Credentials { user: stored.clone(), password_hash: PasswordHash::new("h".into()) }))
        });
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().returning(|password, _| Ok(password.expose() == "right password"));
        let service = AuthService::new(Arc::new(users), Arc::new(hasher), tokens(), clock());
        assert!(matches!(service.login("ada@example.com", "wrong password").await, Err(AuthError::InvalidCredentials)));
        let signed_in = service.login("ADA@example.com", "right password").await;
        assert!(signed_in.is_ok_and(|s| s.user == known));
    }

    #[tokio::test]
    async fn saturated_hasher_is_busy_not_a_failure() {
        let mut users = MockUserRepository::new();
        users.expect_find_by_email().returning(|_| Ok(None));
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_verify().returning(|_, _| Err(HashError::Busy));
        let service = AuthService::new(Arc::new(users), Arc::new(hasher), tokens(), clock());
        assert!(matches!(service.login("ada@example.com", "whatever1").await, Err(AuthError::Busy)));
    }

    #[tokio::test]
    async fn me_for_a_deleted_user_is_unknown() {
        let mut users = MockUserRepository::new();
        users.expect_get().returning(|_| Ok(None));
        let service = AuthService::new(Arc::new(users), Arc::new(MockPasswordHasher::new()), tokens(), clock());
        assert!(matches!(service.me(UserId::new()).await, Err(AuthError::UnknownUser)));
    }
}
