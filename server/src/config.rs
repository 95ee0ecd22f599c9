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
    pub cors_origins: Vec<String>,
    pub llm: Option<LlmSettings>,
    pub rate_limit_per_minute: u32,
    pub redis_url: Option<String>,
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
        Ok(Self {
            host: get("HOST").unwrap_or_else(|| "127.0.0.1".to_owned()),
            port: u16::try_from(number(&get, "PORT", 8000, 0..=65535)?).map_err(|_| bad("PORT", "out of range"))?,
            database_url,
            database_max_connections: usize::try_from(number(&get, "DATABASE_MAX_CONNECTIONS", 16, 1..=1000)?)
                .map_err(|_| bad("DATABASE_MAX_CONNECTIONS", "out of range"))?,
            token_secret,
            access_token_ttl: Duration::from_secs(number(&get, "ACCESS_TOKEN_TTL_SECONDS", 3600, 1..=31_536_000)?),
            environment,
            log_level: get("LOG_LEVEL").unwrap_or_else(|| "info".to_owned()),
            log_format,
            cors_origins: get("CORS_ORIGINS")
                .unwrap_or_else(|| "http://localhost:3000,http://localhost:3001".to_owned())
                .split(',')
                .map(|origin| origin.trim().to_owned())
                .filter(|origin| !origin.is_empty())
                .collect(),
            llm,
            rate_limit_per_minute: u32::try_from(number(&get, "RATE_LIMIT_PER_MINUTE", 30, 1..=1_000_000)?)
                .map_err(|_| bad("RATE_LIMIT_PER_MINUTE", "out of range"))?,
            redis_url: get("REDIS_URL"),
        })
    }
}

fn bad(variable: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { variable, message: message.into() }
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
        assert_eq!(s.cors_origins, vec!["http://localhost:3000", "http://localhost:3001"]);
        assert!(s.llm.is_none() && s.token_secret.is_none());
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
        ] {
            let error = settings(&pairs).err().map(|e| e.variable);
            assert_eq!(error, Some(variable), "{pairs:?}");
        }
    }

    #[test]
    fn llm_settings_when_base_url_is_set() {
        let s = settings(&[("LLM_BASE_URL", "http://127.0.0.1:9/v1/"), ("LLM_TIMEOUT_SECONDS", "5")]);
        let llm = s.ok().and_then(|s| s.llm);
        assert_eq!(llm.as_ref().map(|l| l.base_url.as_str()), Some("http://127.0.0.1:9/v1"));
        assert_eq!(llm.map(|l| (l.model, l.timeout)), Some(("openai/gpt-4o-mini".to_owned(), Duration::from_secs(5))));
    }
}
