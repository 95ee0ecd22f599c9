//! `PasswordHasher` over argon2id, run on a few dedicated threads at a lower
//! CPU priority, behind a bounded admission queue.
//!
//! Hashing is deliberately expensive (tens of ms of CPU and 19 MiB of memory
//! each), so a burst of logins must neither stall the async workers nor take
//! the CPU from the other requests:
//!
//! - at most `workers` hashes run at once, on threads of their own (not
//!   tokio's blocking pool, whose threads other blocking work reuses);
//! - those threads run at the lower priority `nice` (Linux), so when the CPU is
//!   contended the request handlers and the database win it, and when it is
//!   idle hashing still gets all of it;
//! - at most `queue` more hashes wait, and only while the wait this predicts
//!   (from how long recent hashes took, which grows when the CPU is
//!   contended) is within `max_wait`; past either the answer is
//!   `HashError::Busy` at once. A waiting hash whose caller went away is
//!   skipped.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Argon2, PasswordHash as PhcHash};
use async_trait::async_trait;
use parley_users::{HashError, Password, PasswordHash, PasswordHasher};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// How much hashing may run and wait at once, and at what priority.
#[derive(Debug, Clone, Copy)]
pub struct HasherConfig {
    /// Hashes computed at the same time (threads busy with argon2).
    pub workers: usize,
    /// Hashes allowed to wait for a worker; past that, `HashError::Busy` at once.
    pub queue: usize,
    /// A hash is refused at once rather than queued when its predicted wait
    /// for a worker is longer than this.
    pub max_wait: Duration,
    /// How much lower the hashing threads' CPU priority is than the process's:
    /// added to their nice value (capped at 19), as `nice -n`. 0 keeps it.
    /// Linux only; elsewhere, and if the OS refuses, ignored.
    pub nice: i32,
}

impl Default for HasherConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self { workers: cores, queue: cores * 16, max_wait: Duration::from_secs(1), nice: 10 }
    }
}

/// One hash or verification, with its admission permit.
type Job = Box<dyn FnOnce() + Send>;

/// argon2id with the crate defaults, which are the OWASP parameters
/// (m = 19456 KiB, t = 2, p = 1).
pub struct Argon2PasswordHasher {
    /// `workers + queue` permits: one per hash running or waiting.
    admission: Arc<Semaphore>,
    /// Feeds the hashing threads; they stop when it is dropped.
    jobs: Sender<Job>,
    workers: usize,
    /// `workers + queue`.
    capacity: usize,
    max_wait: Duration,
    /// How long a hash has recently taken, start to end (µs, moving average).
    service: Arc<ServiceTime>,
}

impl Argon2PasswordHasher {
    /// Starts `config.workers` hashing threads (at least one). A thread that
    /// cannot be started is left out; with none, every hash fails.
    #[must_use]
    pub fn new(config: HasherConfig) -> Self {
        let workers = config.workers.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..workers {
            let queue = Arc::clone(&queue);
            let nice = config.nice;
            // A failed spawn drops its closure; `run` reports the missing threads.
            let _ =
                std::thread::Builder::new().name(format!("parley-argon2-{index}")).spawn(move || work(&queue, nice));
        }
        let capacity = workers + config.queue;
        Self {
            admission: Arc::new(Semaphore::new(capacity)),
            jobs,
            workers,
            capacity,
            max_wait: config.max_wait,
            service: Arc::new(ServiceTime::default()),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let admitted = self.admit()?;
        let (reply, answer) = oneshot::channel();
        let service = Arc::clone(&self.service);
        let job = Box::new(move || run_job(admitted, reply, &service, job));
        self.jobs.send(job).map_err(|_| unexpected("no hashing thread"))?;
        answer.await.map_err(|_| unexpected("the hashing job was lost"))?
    }

    /// A slot for one more hash, unless the queue is full or the wait it
    /// predicts is over `max_wait`.
    fn admit(&self) -> Result<OwnedSemaphorePermit, HashError> {
        let admitted = self.admission.clone().try_acquire_owned().map_err(|_| HashError::Busy)?;
        let ahead = self.capacity.saturating_sub(self.admission.available_permits() + 1);
        // With `ahead` hashes running or waiting, this one starts after
        // `ahead - workers + 1` of them end, `workers` at a time.
        let turns = (ahead + 1).saturating_sub(self.workers);
        let wait = self.service.get().mul_f64(turns as f64 / self.workers as f64);
        if wait > self.max_wait {
            return Err(HashError::Busy);
        }
        Ok(admitted)
    }
}

/// A moving average of how long one hash takes on a worker (µs).
#[derive(Default)]
struct ServiceTime(AtomicU64);

impl ServiceTime {
    fn get(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }

    /// Folds in one measurement with weight 1/8.
    fn record(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |average| {
            Some(if average == 0 { took } else { average - average / 8 + took / 8 })
        });
    }
}

/// Runs `job` unless its caller is gone, timing it. The slot is held until
/// the job is done, and freed before the answer goes back.
fn run_job<T>(
    admitted: OwnedSemaphorePermit,
    reply: oneshot::Sender<Result<T, HashError>>,
    service: &ServiceTime,
    job: impl FnOnce() -> Result<T, HashError>,
) {
    if reply.is_closed() {
        return;
    }
    let started = Instant::now();
    let outcome = job();
    service.record(started.elapsed());
    drop(admitted);
    let _ = reply.send(outcome);
}

/// A hashing thread: lowers its priority, then runs jobs until the hasher is dropped.
fn work(queue: &Mutex<Receiver<Job>>, nice: i32) {
    lower_priority(nice);
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        // A panicking job loses its answer (the caller gets `Unexpected`), not the thread.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

/// Adds `nice` to the calling thread's nice value (on Linux, nice is per thread).
#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    let thread = Some(rustix::thread::gettid());
    if nice > 0
        && let Ok(current) = rustix::process::getpriority_process(thread)
    {
        // Best effort: without it hashing only competes harder for the CPU.
        let _ = rustix::process::setpriority_process(thread, current.saturating_add(nice).min(19));
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}

fn unexpected(message: &str) -> HashError {
    HashError::Unexpected(message.into())
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
        let hasher = Arc::new(Argon2PasswordHasher::new(HasherConfig {
            workers: 1,
            queue: 0,
            nice: 0,
            ..HasherConfig::default()
        }));
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

    #[tokio::test]
    async fn hashing_threads_run_at_a_lower_priority() {
        let hasher =
            Argon2PasswordHasher::new(HasherConfig { workers: 1, queue: 0, nice: 7, ..HasherConfig::default() });
        let seen = hasher.run(|| Ok(thread_nice())).await.ok().flatten();
        if let Some(own) = thread_nice() {
            assert_eq!(seen, Some((own + 7).min(19)));
        }
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_thread_survives() {
        let hasher =
            Argon2PasswordHasher::new(HasherConfig { workers: 1, queue: 1, nice: 0, ..HasherConfig::default() });
        let panicked: Result<(), HashError> = hasher.run(|| panic!("boom")).await;
        assert!(matches!(panicked, Err(HashError::Unexpected(_))));
        assert!(matches!(hasher.run(|| Ok(1)).await, Ok(1)));
    }

    #[tokio::test]
    async fn a_long_predicted_wait_is_refused_at_once() {
        let config = HasherConfig { workers: 1, queue: 8, max_wait: Duration::from_secs(1), nice: 0 };
        let hasher = Arc::new(Argon2PasswordHasher::new(config));
        // Recent hashes took 10 s each: one waiting behind a running one would wait about that.
        hasher.service.record(Duration::from_secs(10));
        let (release, blocked) = std::sync::mpsc::channel::<()>();
        let running = {
            let hasher = hasher.clone();
            tokio::spawn(async move { hasher.run(move || Ok(blocked.recv().is_ok())).await })
        };
        while hasher.admission.available_permits() == hasher.capacity {
            tokio::task::yield_now().await;
        }
        assert!(matches!(hasher.run(|| Ok(())).await, Err(HashError::Busy)));
        let _ = release.send(());
        assert!(matches!(running.await, Ok(Ok(true))));
        // Nothing ahead: admitted however long hashes take.
        assert!(matches!(hasher.run(|| Ok(())).await, Ok(())));
    }

    /// The calling thread's nice value.
    fn thread_nice() -> Option<i32> {
        #[cfg(target_os = "linux")]
        {
            rustix::process::getpriority_process(Some(rustix::thread::gettid())).ok()
        }
        #[cfg(not(target_os = "linux"))]
        {
            None
        }
    }
}
