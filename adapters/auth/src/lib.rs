//! Authentication adapters: PASETO v4.local tokens and argon2id password hashing.
#![doc = include_str!("../README.md")]

mod hasher;
mod token;

pub use hasher::{Argon2PasswordHasher, HasherConfig};
pub use token::PasetoTokenService;
