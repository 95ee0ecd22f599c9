//! Typed settings read once from the environment (and an optional `.env`).

use std::time::Duration;

use secrecy::SecretString;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// `*`: any origin, without credentials.
    Any,
    /// These origins, with credentials.
    List(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub database_url: String,
    pub database_max_connections: usize,
    /// `None`: generate one at start-up (never in production).
    pub token_secret: Option<[u8; 32]>,
    pub access_token_ttl: Duration,
    pub environment: Environment,
    pub log_level: String,
    pub log_format: LogFormat,
    pub cors_origins: CorsOrigins,
    pub llm: Option<LlmSettings>,
    pub assistant_limits: AssistantLimits,
    pub rate_limit_per_minute: u32,
    pub redis_url: Option<String>,
    /// Open séance sessions one host may have at once.
    pub max_open_sessions_per_user: u32,
    /// Spirit replies in flight in the process.
    pub spirit_max_concurrent: u32,
    pub login_limits: LoginLimits,
    /// Open connections per instance; accepting pauses past it.
    pub max_connections: u32,
    /// Drain time after SIGTERM or SIGINT.
    pub shutdown_grace: Duration,
    /// Serve `/metrics` on this address instead of the API port.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

impl Settings {
    /// Reads the process environment, after loading `.env` if there is one.
    ///
    /// # Errors
    /// `ConfigError` naming the first bad variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is reported by the values it leaves unset.
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
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
            Some(hex_key) => Some(parse_key(&hex_key)?),
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
        if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
            return Err(bad("LOG_LEVEL", format!("is not a level or tracing filter: {log_level:?}")));
        }
        let cors_origins = parse_cors(get("CORS_ORIGINS").as_deref())?;
        let metrics_addr = match get("METRICS_ADDR") {
            None => None,
            Some(raw) => Some(raw.parse().map_err(|_| bad("METRICS_ADDR", format!("must be host:port, got {raw:?}")))?),
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
        };
        let login_limits = LoginLimits {
            failures_per_account: small("LOGIN_FAILURES_PER_ACCOUNT", 10, 1..=1_000_000)?,
            attempts_per_address: small("LOGIN_ATTEMPTS_PER_ADDRESS", 30, 1..=1_000_000)?,
            registrations_per_address: small("REGISTRATIONS_PER_ADDRESS", 10, 1..=1_000_000)?,
        };
        Ok(Self {
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: u16::try_from(number(&get, "PORT", 8000, 0..=65535)?).map_err(|_| bad("PORT", "out of range"))?,
            database_url,
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
            max_open_sessions_per_user: small("MAX_OPEN_SESSIONS_PER_USER", 10, 1..=1_000_000)?,
            spirit_max_concurrent: small("SPIRIT_MAX_CONCURRENT", 32, 1..=100_000)?,
            login_limits,
            max_connections: small("MAX_CONNECTIONS", 20_000, 1..=10_000_000)?,
            shutdown_grace: Duration::from_secs(number(&get, "SHUTDOWN_GRACE_SECONDS", 20, 0..=3600)?),
            metrics_addr,
        })
    }
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
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
    fn defaults_match_the_contract() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((s.host.as_str(), s.port), ("127.0.0.1", 8000));
        assert_eq!(s.database_url, "sqlite://data/parley.db");
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
                context_chars: 24_000
            }
        );
        assert_eq!(
            s.login_limits,
            LoginLimits { failures_per_account: 10, attempts_per_address: 30, registrations_per_address: 10 }
        );
        assert_eq!((s.max_open_sessions_per_user, s.spirit_max_concurrent, s.max_connections), (10, 32, 20_000));
        assert_eq!(s.shutdown_grace, Duration::from_secs(20));
        assert!(s.metrics_addr.is_none());
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
        ] {
            let error = settings(&pairs).err().map(|e| e.variable);
            assert_eq!(error, Some(variable), "{pairs:?}");
        }
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
