//! `PasswordHasher` over argon2id, run on a bounded blocking pool.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Argon2, PasswordHash as PhcHash};
use async_trait::async_trait;
use parley_users::{HashError, Password, PasswordHash, PasswordHasher};
use tokio::sync::Semaphore;

/// How much hashing may run and wait at once.
#[derive(Debug, Clone, Copy)]
pub struct HasherConfig {
    /// Hashes computed at the same time (blocking threads busy with argon2).
    pub workers: usize,
    /// Hashes allowed to wait for a worker; past that, `HashError::Busy` at once.
    pub queue: usize,
}

impl Default for HasherConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self { workers: cores, queue: cores * 16 }
    }
}

/// argon2id with the crate defaults, which are the OWASP parameters
/// (m = 19456 KiB, t = 2, p = 1).
pub struct Argon2PasswordHasher {
    admission: Arc<Semaphore>,
    workers: Arc<Semaphore>,
}

impl Argon2PasswordHasher {
    #[must_use]
    pub fn new(config: HasherConfig) -> Self {
        Self {
            admission: Arc::new(Semaphore::new(config.workers + config.queue)),
            workers: Arc::new(Semaphore::new(config.workers.max(1))),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _admitted = self.admission.clone().try_acquire_owned().map_err(|_| HashError::Busy)?;
        let _worker = self.workers.clone().acquire_owned().await.map_err(|e| HashError::Unexpected(e.into()))?;
        tokio::task::spawn_blocking(job).await.map_err(|e| HashError::Unexpected(e.into()))?
    }
}

fn hash_blocking(password: &str) -> Result<String, HashError> {
    // A v4 UUID is 122 bits from the OS random source: ample for a unique salt.
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| HashError::Unexpected(e.to_string().into()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| HashError::Unexpected(e.to_string().into()))
}

/// A hash of a random password, verified against when the account is unknown
/// so that the answer takes as long as for a known one.
fn dummy_hash() -> Result<&'static str, HashError> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash);
    }
    let hash = hash_blocking(&uuid::Uuid::new_v4().to_string())?;
    Ok(DUMMY.get_or_init(|| hash))
}

fn verify_blocking(password: &str, phc: &str) -> Result<bool, HashError> {
    let parsed = PhcHash::new(phc).map_err(|e| HashError::Unexpected(e.to_string().into()))?;
    Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

#[async_trait]
impl PasswordHasher for Argon2PasswordHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let password = password.clone();
        self.run(move || hash_blocking(password.expose()).map(PasswordHash::new)).await
    }

    async fn verify(&self, password: &Password, hash: Option<PasswordHash>) -> Result<bool, HashError> {
        let password = password.clone();
        self.run(move || match hash {
            Some(hash) => verify_blocking(password.expose(), hash.as_str()),
            None => verify_blocking(password.expose(), dummy_hash()?).map(|_| false),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(raw: &str) -> Password {
        Password::unchecked(raw)
    }

    #[tokio::test]
    async fn hash_is_argon2id_and_verifies() {
        let hasher = Argon2PasswordHasher::new(HasherConfig::default());
        let hash = hasher.hash(&password("correct horse")).await.ok();
        assert!(hash.as_ref().is_some_and(|h| h.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$")));
        assert!(matches!(hasher.verify(&password("correct horse"), hash.clone()).await, Ok(true)));
        assert!(matches!(hasher.verify(&password("wrong horse"), hash).await, Ok(false)));
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let hasher = Argon2PasswordHasher::new(HasherConfig::default());
        assert!(matches!(hasher.verify(&password("anything"), None).await, Ok(false)));
    }

    #[tokio::test]
    async fn saturated_hasher_answers_busy_at_once() {
        let hasher = Arc::new(Argon2PasswordHasher::new(HasherConfig { workers: 1, queue: 0 }));
        let first = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.hash(&password("first one")).await })
        };
        tokio::task::yield_now().await;
        while hasher.admission.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hasher.hash(&password("second one")).await, Err(HashError::Busy)));
        assert!(matches!(first.await, Ok(Ok(_))));
    }
}
