//! Fault tests: a database that hangs, one that restarts, and a server killed
//! with SIGKILL under writes. Each runs a real server; the PostgreSQL ones
//! use a proxy or a private cluster, never stopping the shared server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic

mod cluster;
mod crash;
mod hang;
mod proxy;
mod restart;
mod retry;
mod server;
