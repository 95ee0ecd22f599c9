//! Black-box API tests: the real server on port 0, a real HTTP client.
//! `PARLEY_TEST_STORE=sqlite` runs them on the embedded store instead of PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic

mod auth;
mod chat;
mod chat_faults;
mod chatkit;
mod chatkit_limits;
mod chatkit_protocol;
mod edits;
mod hardening;
mod health;
mod metrics;
mod openapi;
mod provider;
mod sessions;
mod support;
mod tasks;
mod websocket;
