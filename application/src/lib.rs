//! Parley's use cases: services over the domain ports.
#![doc = include_str!("../README.md")]

mod auth;
mod tasks;

pub use auth::{AuthError, AuthService, Registration, Session};
pub use tasks::TaskService;
