//! Typed settings read once from the environment (and an optional `.env`).

use std::time::Duration;

use secrecy::{CloneableSecret, ExposeSecret, SecretBox, SecretString, zeroize::Zeroize};

/// A bad configuration value; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Test,
    Production,
}

impl Environment {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Test => "test",
            Self::Production => "production",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The language model provider, when one is configured.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub model: String,
    pub timeout: Duration,
}

/// Bounds on one assistant reply, whichever model answers (API.md, "Limits of the assistant").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssistantLimits {
    /// Tool calls run per reply across all rounds; later calls are answered to the model as errors.
    pub max_tool_calls: u32,
    /// `max_tokens` sent on every provider request.
    pub max_tokens: u32,
    /// Deadline for a whole reply, however the provider streams.
    pub reply_timeout: Duration,
    /// History sent to the model per turn, in characters.
    pub context_chars: u32,
    /// Which assistant changes wait for the user's approval.
    pub approval: parley_tasks::Approval,
}

impl AssistantLimits {
    /// The application's reply bounds (the fixed text and argument caps included).
    #[must_use]
    pub fn reply_limits(&self) -> parley_application::ReplyLimits {
        let size = |value: u32| usize::try_from(value).unwrap_or(usize::MAX);
        parley_application::ReplyLimits {
            max_tool_calls: size(self.max_tool_calls),
            reply_timeout: self.reply_timeout,
            context_chars: size(self.context_chars),
            approval: self.approval,
            ..parley_application::ReplyLimits::default()
        }
    }
}

/// Abuse limits on login and registration (per account, per client address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Failed logins per account per 15 minutes.
    pub failures_per_account: u32,
    /// Login attempts per client address per minute.
    pub attempts_per_address: u32,
    /// Registrations per client address per hour.
    pub registrations_per_address: u32,
}

/// Which CORS origins may call the API with credentials.
/// Where `/metrics` is served, and whether anything is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metrics {
    /// On the API port (`METRICS_ADDR` unset).
    ApiPort,
    /// On a listener of its own (`METRICS_ADDR=host:port`).
    Listener(std::net::SocketAddr),
    /// Nowhere, and nothing recorded (`METRICS_ADDR=off`).
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin, without credentials.
    Any,
    /// These origins, with credentials.
    List(Vec<String>),
}

/// The 32-byte key tokens are sealed with, kept in a [`SecretBox`] (whose
/// `Debug` shows nothing) and wiped when dropped.
#[derive(Clone)]
pub struct TokenKey(pub [u8; 32]);

impl Zeroize for TokenKey {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl CloneableSecret for TokenKey {}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    /// May hold a password: its `Debug` shows nothing; logs use
    /// [`Settings::store_description`].
    pub database_url: SecretString,
    pub database_max_connections: usize,
    /// `None`: generate one at start-up (never in production).
    pub token_secret: Option<SecretBox<TokenKey>>,
    pub access_token_ttl: Duration,
    pub environment: Environment,
    pub log_level: String,
    pub log_format: LogFormat,
    pub cors_origins: CorsOrigins,
    pub llm: Option<LlmSettings>,
    pub assistant_limits: AssistantLimits,
    pub rate_limit_per_minute: u32,
    pub redis_url: Option<String>,
    /// What every Redis key of this deployment starts with (`REDIS_KEY_PREFIX`).
    pub redis_key_prefix: String,
    /// How long a séance seat outlives its instance's last renewal (`REDIS_SEAT_LEASE_SECONDS`).
    pub redis_seat_lease: Duration,
    /// Open séance sessions one host may have at once.
    pub max_open_sessions_per_user: u32,
    /// Spirit replies in flight in the process.
    pub spirit_max_concurrent: u32,
    pub login_limits: LoginLimits,
    /// WebSocket connections one user may hold to one session.
    pub ws_connections_per_user: u32,
    /// Open connections per instance; accepting pauses past it.
    pub max_connections: u32,
    /// Drain time after SIGTERM or SIGINT.
    pub shutdown_grace: Duration,
    /// Where `/metrics` is served (`METRICS_ADDR`).
    pub metrics: Metrics,
    /// How often the server pings a WebSocket client (`WS_PING_INTERVAL_SECONDS`, 30).
    pub ws_ping_interval: Duration,
    /// How long a WebSocket client may stay silent before it is closed
    /// (`WS_IDLE_TIMEOUT_SECONDS`, 75; more than the ping interval).
    pub ws_idle_timeout: Duration,
}

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    ///
    /// # Errors
    /// `ConfigError` naming the first bad variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        load_dotenv()?;
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Every problem of the configuration `lookup` gives, not only the
    /// first: each bad variable is reported, then read as unset to find the next.
    #[must_use]
    pub fn problems(lookup: impl Fn(&str) -> Option<String>) -> Vec<ConfigError> {
        let mut problems: Vec<ConfigError> = Vec::new();
        loop {
            // A reported variable reads as unset, or, for one that may be
            // required, as a valid stand-in, so the next problem shows.
            let masked = |name: &str| match problems.iter().any(|p| p.variable == name) {
                true if name == "TOKEN_SECRET" => Some("00".repeat(32)),
                true => None,
                false => lookup(name),
            };
            match Self::from_lookup(masked) {
                Ok(_) => return problems,
                Err(error) if problems.iter().any(|p| p.variable == error.variable) => return problems,
                Err(error) => problems.push(error),
            }
        }
    }

    /// The store, for logs: kind and location, never a password.
    #[must_use]
    pub fn store_description(&self) -> String {
        let url = self.database_url.expose_secret();
        match url.strip_prefix("sqlite://") {
            Some(path) => format!("sqlite {path}"),
            None => format!("postgres {}", redact_url(url)),
        }
    }

    /// The model provider, for logs: offline, or the base URL's host and the model.
    #[must_use]
    pub fn provider_description(&self) -> String {
        match &self.llm {
            None => "offline assistant".to_owned(),
            Some(llm) => {
                let host = llm.base_url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("?");
                format!("{host} model {}", llm.model)
            }
        }
    }

    /// The effective configuration, one `(variable, value)` per setting,
    /// with secrets redacted (what `parley config` prints).
    #[must_use]
    pub fn effective(&self) -> Vec<(&'static str, String)> {
        let cors = match &self.cors_origins {
            CorsOrigins::Any => "*".to_owned(),
            CorsOrigins::List(list) => list.join(","),
        };
        let llm = self.llm.as_ref();
        let limits = &self.assistant_limits;
        vec![
            ("HOST", self.host.clone()),
            ("PORT", self.port.to_string()),
            ("DATABASE_URL", redact_url(self.database_url.expose_secret())),
            ("DATABASE_MAX_CONNECTIONS", self.database_max_connections.to_string()),
            (
                "TOKEN_SECRET",
                if self.token_secret.is_some() { "(set, redacted)" } else { "(unset: generated at start-up)" }
                    .to_owned(),
            ),
            ("ACCESS_TOKEN_TTL_SECONDS", self.access_token_ttl.as_secs().to_string()),
            ("ENVIRONMENT", self.environment.as_str().to_owned()),
            ("LOG_LEVEL", self.log_level.clone()),
            ("LOG_FORMAT", if self.log_format == LogFormat::Json { "json" } else { "pretty" }.to_owned()),
            ("CORS_ORIGINS", cors),
            ("LLM_BASE_URL", llm.map_or_else(|| "(unset: offline assistant)".to_owned(), |l| l.base_url.clone())),
            (
                "LLM_API_KEY",
                if llm.is_some_and(|l| l.api_key.is_some()) { "(set, redacted)" } else { "(unset)" }.to_owned(),
            ),
            ("LLM_MODEL", llm.map_or_else(|| "openai/gpt-4o-mini".to_owned(), |l| l.model.clone())),
            ("LLM_TIMEOUT_SECONDS", llm.map_or(60, |l| l.timeout.as_secs()).to_string()),
            ("LLM_MAX_TOOL_CALLS", limits.max_tool_calls.to_string()),
            ("LLM_MAX_TOKENS", limits.max_tokens.to_string()),
            ("LLM_REPLY_TIMEOUT_SECONDS", limits.reply_timeout.as_secs().to_string()),
            ("LLM_CONTEXT_CHARS", limits.context_chars.to_string()),
            ("ASSISTANT_APPROVAL", limits.approval.to_string()),
            ("RATE_LIMIT_PER_MINUTE", self.rate_limit_per_minute.to_string()),
            ("REDIS_URL", self.redis_url.as_deref().map_or_else(|| "(unset)".to_owned(), redact_url)),
            ("REDIS_KEY_PREFIX", self.redis_key_prefix.clone()),
            ("REDIS_SEAT_LEASE_SECONDS", self.redis_seat_lease.as_secs().to_string()),
            ("MAX_OPEN_SESSIONS_PER_USER", self.max_open_sessions_per_user.to_string()),
            ("SPIRIT_MAX_CONCURRENT", self.spirit_max_concurrent.to_string()),
            ("LOGIN_FAILURES_PER_ACCOUNT", self.login_limits.failures_per_account.to_string()),
            ("LOGIN_ATTEMPTS_PER_ADDRESS", self.login_limits.attempts_per_address.to_string()),
            ("REGISTRATIONS_PER_ADDRESS", self.login_limits.registrations_per_address.to_string()),
            ("WS_PING_INTERVAL_SECONDS", self.ws_ping_interval.as_secs().to_string()),
            ("WS_IDLE_TIMEOUT_SECONDS", self.ws_idle_timeout.as_secs().to_string()),
            ("WS_CONNECTIONS_PER_USER", self.ws_connections_per_user.to_string()),
            ("MAX_CONNECTIONS", self.max_connections.to_string()),
            ("SHUTDOWN_GRACE_SECONDS", self.shutdown_grace.as_secs().to_string()),
            (
                "METRICS_ADDR",
                match self.metrics {
                    Metrics::ApiPort => "(unset: /metrics on the API port)".to_owned(),
                    Metrics::Listener(address) => address.to_string(),
                    Metrics::Off => "off".to_owned(),
                },
            ),
        ]
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    ///
    /// # Errors
    /// `ConfigError` naming the first bad variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let environment = match get("ENVIRONMENT").as_deref() {
            None | Some("development") => Environment::Development,
            Some("test") => Environment::Test,
            Some("production") => Environment::Production,
            Some(_) => {
                return Err(bad("ENVIRONMENT", "must be development, test or production"));
            }
        };
        let token_secret = match get("TOKEN_SECRET") {
            Some(hex_key) => Some(SecretBox::new(Box::new(TokenKey(parse_key(&hex_key)?)))),
            None if environment == Environment::Production => {
                return Err(bad("TOKEN_SECRET", "is required when ENVIRONMENT=production"));
            }
            None => None,
        };
        let database_url = get("DATABASE_URL").unwrap_or_else(|| "sqlite://data/parley.db".to_owned());
        if !(database_url.starts_with("sqlite://")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(bad("DATABASE_URL", "must start with sqlite:// or postgres://"));
        }
        let log_format = match get("LOG_FORMAT").as_deref() {
            None | Some("json") => LogFormat::Json,
            Some("pretty" | "text") => LogFormat::Pretty,
            Some(_) => return Err(bad("LOG_FORMAT", "must be json or pretty")),
        };
        let llm = match get("LLM_BASE_URL") {
            None => None,
            Some(base_url) => {
                if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
                    return Err(bad("LLM_BASE_URL", "must be an http:// or https:// URL"));
                }
                Some(LlmSettings {
                    base_url: base_url.trim_end_matches('/').to_owned(),
                    api_key: get("LLM_API_KEY").map(SecretString::from),
                    model: get("LLM_MODEL").unwrap_or_else(|| "openai/gpt-4o-mini".to_owned()),
                    timeout: Duration::from_secs(number(&get, "LLM_TIMEOUT_SECONDS", 60, 1..=3600)?),
                })
            }
        };
        let log_level = get("LOG_LEVEL").unwrap_or_else(|| "info".to_owned());
        if !is_log_filter(&log_level) {
            return Err(bad(
                "LOG_LEVEL",
                format!(
                    "{log_level:?} is not a level (trace, debug, info, warn, error, off) or a tracing filter such as warn,parley_server=debug"
                ),
            ));
        }
        let cors_origins = parse_cors(get("CORS_ORIGINS").as_deref())?;
        let metrics = match get("METRICS_ADDR").as_deref() {
            None => Metrics::ApiPort,
            Some("off") => Metrics::Off,
            Some(raw) => Metrics::Listener(
                raw.parse().map_err(|_| bad("METRICS_ADDR", format!("must be host:port or off, got {raw:?}")))?,
            ),
        };
        let small = |variable: &'static str, default: u64, range: std::ops::RangeInclusive<u64>| {
            number(&get, variable, default, range)
                .and_then(|value| u32::try_from(value).map_err(|_| bad(variable, "out of range")))
        };
        let assistant_limits = AssistantLimits {
            max_tool_calls: small("LLM_MAX_TOOL_CALLS", 10, 0..=1000)?,
            max_tokens: small("LLM_MAX_TOKENS", 1024, 1..=1_000_000)?,
            reply_timeout: Duration::from_secs(number(&get, "LLM_REPLY_TIMEOUT_SECONDS", 120, 1..=3600)?),
            context_chars: small("LLM_CONTEXT_CHARS", 24_000, 1000..=10_000_000)?,
            approval: match get("ASSISTANT_APPROVAL") {
                None => parley_tasks::Approval::default(),
                Some(raw) => raw.parse().map_err(|_| {
                    bad("ASSISTANT_APPROVAL", format!("must be never, destructive or always, got {raw:?}"))
                })?,
            },
        };
        let login_limits = LoginLimits {
            failures_per_account: small("LOGIN_FAILURES_PER_ACCOUNT", 10, 1..=1_000_000)?,
            attempts_per_address: small("LOGIN_ATTEMPTS_PER_ADDRESS", 30, 1..=1_000_000)?,
            registrations_per_address: small("REGISTRATIONS_PER_ADDRESS", 10, 1..=1_000_000)?,
        };
        let ws_ping_interval = Duration::from_secs(number(&get, "WS_PING_INTERVAL_SECONDS", 30, 1..=3600)?);
        let ws_idle_timeout = Duration::from_secs(number(&get, "WS_IDLE_TIMEOUT_SECONDS", 75, 2..=7200)?);
        if ws_idle_timeout <= ws_ping_interval {
            return Err(bad("WS_IDLE_TIMEOUT_SECONDS", "must be longer than WS_PING_INTERVAL_SECONDS"));
        }
        Ok(Self {
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: u16::try_from(number(&get, "PORT", 8000, 0..=65535)?).map_err(|_| bad("PORT", "out of range"))?,
            database_url: SecretString::from(database_url),
            database_max_connections: usize::try_from(number(&get, "DATABASE_MAX_CONNECTIONS", 16, 1..=1000)?)
                .map_err(|_| bad("DATABASE_MAX_CONNECTIONS", "out of range"))?,
            token_secret,
            access_token_ttl: Duration::from_secs(number(&get, "ACCESS_TOKEN_TTL_SECONDS", 3600, 1..=31_536_000)?),
            environment,
            log_level,
            log_format,
            cors_origins,
            llm,
            assistant_limits,
            rate_limit_per_minute: small("RATE_LIMIT_PER_MINUTE", 30, 1..=1_000_000)?,
            redis_url: get("REDIS_URL"),
            redis_key_prefix: get("REDIS_KEY_PREFIX").unwrap_or_else(|| "parley:".to_owned()),
            redis_seat_lease: Duration::from_secs(number(&get, "REDIS_SEAT_LEASE_SECONDS", 30, 1..=300)?),
            max_open_sessions_per_user: small("MAX_OPEN_SESSIONS_PER_USER", 10, 1..=1_000_000)?,
            spirit_max_concurrent: small("SPIRIT_MAX_CONCURRENT", 32, 1..=100_000)?,
            login_limits,
            max_connections: small("MAX_CONNECTIONS", 20_000, 1..=10_000_000)?,
            ws_connections_per_user: small("WS_CONNECTIONS_PER_USER", 10, 1..=10_000)?,
            shutdown_grace: Duration::from_secs(number(&get, "SHUTDOWN_GRACE_SECONDS", 20, 0..=3600)?),
            metrics,
            ws_ping_interval,
            ws_idle_timeout,
        })
    }
}

/// Loads `.env` from the current folder if there is one; a line that does
/// not parse stops start-up, naming the line, rather than dropping the rest.
///
/// # Errors
/// `ConfigError` for `.env` with the line and what is wrong.
pub fn load_dotenv() -> Result<(), ConfigError> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(error) if error.not_found() => Ok(()),
        Err(dotenvy::Error::LineParse(line, at)) => {
            Err(bad(".env", format!("this line does not parse as NAME=value (at character {at}): {line:?}")))
        }
        Err(error) => Err(bad(".env", error.to_string())),
    }
}

/// `scheme://user:password@host/...` without the password.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_once('/').map_or((rest, None), |(a, p)| (a, Some(p)));
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{credentials}@{host}"),
        },
        None => authority.to_owned(),
    };
    match path {
        Some(path) => format!("{scheme}://{authority}/{path}"),
        None => format!("{scheme}://{authority}"),
    }
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
}

/// Whether `filter` is a level or `tracing` filter directives whose levels
/// are all real levels. A bare word is a target to `tracing` (so `verbose`
/// would silently log nothing); here a bare word must be a level.
fn is_log_filter(filter: &str) -> bool {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |word: &str| LEVELS.iter().any(|level| level.eq_ignore_ascii_case(word.trim()));
    let directives_ok =
        filter.split(',').map(str::trim).filter(|d| !d.is_empty()).all(|directive| match directive.rsplit_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(directive) || directive.contains('['),
        });
    directives_ok && tracing_subscriber::EnvFilter::try_new(filter).is_ok()
}

/// `CORS_ORIGINS`: `*`, or a comma-separated list that is not empty after trimming.
fn parse_cors(raw: Option<&str>) -> Result<CorsOrigins, ConfigError> {
    let raw = raw.unwrap_or("http://localhost:3000,http://localhost:3001");
    if raw.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let origins: Vec<String> =
        raw.split(',').map(|origin| origin.trim().to_owned()).filter(|origin| !origin.is_empty()).collect();
    if origins.is_empty() {
        return Err(bad("CORS_ORIGINS", "lists no origin; give one or more, or * for any origin"));
    }
    if let Some(bad_origin) =
        origins.iter().find(|o| o.as_str() == "*" || !(o.starts_with("http://") || o.starts_with("https://")))
    {
        return Err(bad(
            "CORS_ORIGINS",
            format!("{bad_origin:?} is not an http(s) origin; use * alone for any origin"),
        ));
    }
    Ok(CorsOrigins::List(origins))
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u64,
    range: std::ops::RangeInclusive<u64>,
) -> Result<u64, ConfigError> {
    let Some(raw) = get(variable) else {
        return Ok(default);
    };
    let value: u64 = raw.parse().map_err(|_| bad(variable, format!("must be a whole number, got {raw:?}")))?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(bad(variable, format!("must be between {} and {}", range.start(), range.end())))
    }
}

fn parse_key(hex_key: &str) -> Result<[u8; 32], ConfigError> {
    let bytes = hex::decode(hex_key).map_err(|_| bad("TOKEN_SECRET", "must be 64 hexadecimal characters"))?;
    bytes.try_into().map_err(|_| bad("TOKEN_SECRET", "must be 64 hexadecimal characters (32 bytes)"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn debug_shows_neither_the_key_nor_the_database_password() {
        let key = "ab".repeat(32);
        let s = settings(&[("TOKEN_SECRET", &key), ("DATABASE_URL", "postgres://parley:hunter2@db/parley")])
            .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains(&key), "{shown}");
        assert!(!shown.contains("171, 171"), "the key's bytes: {shown}");
        assert_eq!(s.token_secret.as_ref().map(|k| k.expose_secret().0), Some([0xab; 32]));
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8000));
        assert_eq!(s.database_url.expose_secret(), "sqlite://data/parley.db");
        assert_eq!(s.database_max_connections, 16);
        assert_eq!(s.access_token_ttl, Duration::from_secs(3600));
        assert_eq!(s.rate_limit_per_minute, 30);
        assert_eq!(
            s.cors_origins,
            CorsOrigins::List(vec!["http://localhost:3000".into(), "http://localhost:3001".into()])
        );
        assert!(s.llm.is_none() && s.token_secret.is_none());
        assert_eq!(
            s.assistant_limits,
            AssistantLimits {
                max_tool_calls: 10,
                max_tokens: 1024,
                reply_timeout: Duration::from_secs(120),
                context_chars: 24_000,
                approval: parley_tasks::Approval::Destructive,
            }
        );
        assert_eq!(
            s.login_limits,
            LoginLimits { failures_per_account: 10, attempts_per_address: 30, registrations_per_address: 10 }
        );
        assert_eq!((s.max_open_sessions_per_user, s.spirit_max_concurrent, s.max_connections), (10, 32, 20_000));
        assert_eq!(s.shutdown_grace, Duration::from_secs(20));
        assert_eq!(s.metrics, Metrics::ApiPort);
        assert_eq!((s.ws_ping_interval, s.ws_idle_timeout), (Duration::from_secs(30), Duration::from_secs(75)));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (pairs, variable) in [
            (vec![("PORT", "eighty")], "PORT"),
            (vec![("PORT", "70000")], "PORT"),
            (vec![("TOKEN_SECRET", "abc")], "TOKEN_SECRET"),
            (vec![("ENVIRONMENT", "staging")], "ENVIRONMENT"),
            (vec![("ENVIRONMENT", "production")], "TOKEN_SECRET"),
            (vec![("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (vec![("RATE_LIMIT_PER_MINUTE", "0")], "RATE_LIMIT_PER_MINUTE"),
            (vec![("LLM_BASE_URL", "ftp://x")], "LLM_BASE_URL"),
            (vec![("CORS_ORIGINS", " , ")], "CORS_ORIGINS"),
            (vec![("CORS_ORIGINS", "http://a.test,*")], "CORS_ORIGINS"),
            (vec![("LOG_LEVEL", "verbose")], "LOG_LEVEL"),
            (vec![("LLM_MAX_TOKENS", "0")], "LLM_MAX_TOKENS"),
            (vec![("MAX_CONNECTIONS", "many")], "MAX_CONNECTIONS"),
            (vec![("METRICS_ADDR", "nowhere")], "METRICS_ADDR"),
            (vec![("WS_PING_INTERVAL_SECONDS", "0")], "WS_PING_INTERVAL_SECONDS"),
            (vec![("WS_PING_INTERVAL_SECONDS", "80")], "WS_IDLE_TIMEOUT_SECONDS"),
        ] {
            let error = settings(&pairs).err().map(|e| e.variable);
            assert_eq!(error, Some(variable), "{pairs:?}");
        }
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let problems = Settings::problems(|name| match name {
            "PORT" => Some("eighty".into()),
            "LOG_LEVEL" => Some("verbose".into()),
            "ENVIRONMENT" => Some("production".into()),
            _ => None,
        });
        let mut variables: Vec<&str> = problems.iter().map(|p| p.variable).collect();
        variables.sort_unstable();
        assert_eq!(variables, vec!["LOG_LEVEL", "PORT", "TOKEN_SECRET"]);
        assert!(Settings::problems(|_| None).is_empty());
    }

    #[test]
    fn passwords_never_leave_the_settings() {
        let s = settings(&[("DATABASE_URL", "postgres://app:s3cret@db:5432/parley")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.store_description(), "postgres postgres://app:***@db:5432/parley");
        let printed = format!("{:?}", s.effective());
        assert!(!printed.contains("s3cret"), "{printed}");
    }

    #[test]
    fn cors_star_means_any_origin() {
        let s = settings(&[("CORS_ORIGINS", " * ")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.cors_origins, CorsOrigins::Any);
    }

    #[test]
    fn log_level_accepts_tracing_filters() {
        let s = settings(&[("LOG_LEVEL", "warn,parley_server=debug")]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.log_level, "warn,parley_server=debug");
    }

    #[test]
    fn llm_settings_when_base_url_is_set() {
        let s = settings(&[("LLM_BASE_URL", "http://127.0.0.1:9/v1/"), ("LLM_TIMEOUT_SECONDS", "5")]);
        let llm = s.ok().and_then(|s| s.llm);
        assert_eq!(llm.as_ref().map(|l| l.base_url.as_str()), Some("http://127.0.0.1:9/v1"));
        assert_eq!(llm.map(|l| (l.model, l.timeout)), Some(("openai/gpt-4o-mini".to_owned(), Duration::from_secs(5))));
    }
}
