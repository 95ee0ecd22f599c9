//! Users domain: account values that parse their input, and the ports that
//! store users, hash passwords and issue access tokens.
#![doc = include_str!("../README.md")]

mod ports;
mod values;

use parley_kernel::{Timestamp, UserId};

pub use ports::{
    AccessToken, HashError, PasswordHasher, RegisterError, TokenClaims, TokenError, TokenService, UserRepository,
};
pub use values::{DisplayName, DisplayNameError, Email, EmailError, Password, PasswordError, PasswordHash};

#[cfg(feature = "mock")]
pub use ports::{MockPasswordHasher, MockTokenService, MockUserRepository};

/// A registered user as every other part of Parley sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: DisplayName,
    pub created_at: Timestamp,
}

/// What registering stores: the parsed values and the password's hash.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub email: Email,
    pub name: DisplayName,
    pub password_hash: PasswordHash,
    pub created_at: Timestamp,
}

/// A stored user together with the hash their password must match.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: User,
    pub password_hash: PasswordHash,
}
