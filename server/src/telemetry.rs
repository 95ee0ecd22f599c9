//! Logging: `tracing` to stdout, JSON lines by default.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Dependencies whose debug and trace events carry request and response
/// contents (headers with tokens, frames, bound SQL parameters). They stay at
/// `info` whatever `LOG_LEVEL` says, so no level puts a secret in the logs.
const QUIET_TARGETS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "tokio_postgres",
    "postgres_protocol",
    "diesel",
    "diesel_async",
    "deadpool",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "poem",
    "poem_openapi",
    "mio",
    "want",
];

/// `LOG_LEVEL` with [`QUIET_TARGETS`] held at `info` (later directives win).
#[must_use]
pub fn filter_directives(log_level: &str) -> String {
    let mut directives = log_level.to_owned();
    for target in QUIET_TARGETS {
        directives.push(',');
        directives.push_str(target);
        directives.push_str("=info");
    }
    directives
}

/// Installs the global subscriber; later calls (tests start many servers) are no-ops.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::try_new(filter_directives(&settings.log_level)).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout);
    let _ = match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}
