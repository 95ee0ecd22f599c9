//! Logins at twice the hashing capacity, with task reads alongside.
//!
//! 1. Capacity: closed-loop `POST /api/v1/auth/login` (a correct password) at
//!    twice the server's hashing workers, so the pool never idles and nothing
//!    is refused; its rate is the hashing capacity.
//! 2. Baseline: `GET /api/v1/tasks?limit=20` alone at [`READ_CONNECTIONS`].
//! 3. The same reads again while an open-loop generator starts logins at twice
//!    that capacity on a fixed schedule, each its own task that waits for no
//!    other. Login latencies count from the scheduled start, so a late client
//!    is charged, not hidden.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::Options;
use crate::load::{self, Stats};
use crate::scenarios::{self, Bench, Verdict};

/// Connections of the task reads, as in `tasks-list`.
const READ_CONNECTIONS: usize = 16;
/// The login user's password.
const PASSWORD: &str = "login overload password";
/// The target: reads keep this share of their rate.
const READS_KEPT: f64 = 0.7;
/// The target: refused logins are answered within this many ms (judged on p99).
const REFUSED_WITHIN_MS: f64 = 100.0;

/// Runs the three steps and judges the targets.
///
/// # Errors
/// If a step cannot run, a read fails, or a login fails in a way that is
/// neither a success nor a refusal with `Retry-After`.
pub async fn overload(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let rows = if options.smoke { 50 } else { 1000 };
    println!(
        "\n== login-overload: POST /api/v1/auth/login open-loop at 2× the hashing capacity, with \
         GET /api/v1/tasks?limit=20 of {rows} tasks at {READ_CONNECTIONS} connections alongside, vs the reads alone"
    );
    let email = register(bench).await?;
    let login_url = format!("{}/api/v1/auth/login", bench.address);
    let body = Arc::new(json!({"email": email, "password": PASSWORD}));
    let capacity = capacity(options, workers, &login_url, &body).await?;

    let reads_url = format!("{}/api/v1/tasks?limit=20", bench.address);
    let token = seed_reader(bench, rows).await?;
    let alone = scenarios::get_load(options, READ_CONNECTIONS, reads_url.clone(), Some(token.clone())).await?;
    println!("  {:<10} {}", "reads", scenarios::describe(&alone));
    scenarios::no_errors("reads alone", &alone)?;

    let rate = 2.0 * capacity;
    let generator = spawn_logins(scenarios::client(256)?, login_url, body, rate, options.warmup, options.duration);
    let loaded = scenarios::get_load(options, READ_CONNECTIONS, reads_url, Some(token)).await?;
    let outcomes = generator.await.context("the login generator panicked")??;
    println!("  {:<10} {}", "reads+", scenarios::describe(&loaded));
    scenarios::no_errors("reads under login overload", &loaded)?;
    let logins = Logins::tally(&outcomes)?;
    logins.print(rate, options.duration);
    let verdicts = verdicts(&alone, &loaded, &logins);
    if logins.failed > 0 {
        anyhow::bail!(
            "{} of {} logins failed (neither 200 nor 429/503 with Retry-After), first: {}",
            logins.failed,
            logins.sent,
            logins.first_failure.as_deref().unwrap_or("?")
        );
    }
    Ok(verdicts)
}

/// The reads ratio and the refusal latency (p99 judged; max printed too).
fn verdicts(alone: &Stats, loaded: &Stats, logins: &Logins) -> Vec<Verdict> {
    let ratio = loaded.rps() / alone.rps();
    let reads = scenarios::verdict(
        "login-overload",
        format!("reads keep ≥ {READS_KEPT}× rps"),
        format!("{:.0} / {:.0} req/s = {ratio:.2}×", loaded.rps(), alone.rps()),
        ratio >= READS_KEPT,
    );
    let refused_count = logins.refused.len();
    let (measured, met) = if refused_count == 0 {
        (format!("none of {} logins refused", logins.sent), false)
    } else {
        let p99 = ms(&logins.refused, 0.99);
        let max = logins.refused.max() as f64 / 1000.0;
        (format!("p99 {p99:.2} ms (max {max:.2} ms) of {refused_count} refused"), p99 <= REFUSED_WITHIN_MS)
    };
    let refused = scenarios::verdict(
        "login-overload",
        format!("excess logins refused within {REFUSED_WITHIN_MS:.0} ms (p99)"),
        measured,
        met,
    );
    let retry_after = scenarios::verdict(
        "login-overload",
        "every refusal carries Retry-After".to_owned(),
        format!("{} of {} without", logins.no_retry_after, refused_count + logins.no_retry_after),
        logins.no_retry_after == 0,
    );
    vec![reads, refused, retry_after]
}

/// Registers the user whose password every login presents; returns its email.
async fn register(bench: &Bench) -> anyhow::Result<String> {
    let email = format!("login-{}@example.com", uuid::Uuid::new_v4().simple());
    let response = bench
        .client
        .post(format!("{}/api/v1/auth/register", bench.address))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Login overload"}))
        .send()
        .await?;
    let status = response.status();
    if status.as_u16() != 201 {
        anyhow::bail!("register answered {status}: {}", response.text().await.unwrap_or_default());
    }
    Ok(email)
}

/// A second user with `rows` tasks (seeded by SQL, as `tasks-list` does); returns its token.
async fn seed_reader(bench: &Bench, rows: usize) -> anyhow::Result<String> {
    let (user, token) = bench.register("login-reader").await?;
    bench.seed_tasks(&user, rows).await?;
    Ok(token)
}

/// Step 1: logins/s completed, closed-loop at twice the hashing workers.
async fn capacity(options: &Options, workers: usize, url: &str, body: &Arc<Value>) -> anyhow::Result<f64> {
    let connections = 2 * workers;
    let (warmup, duration) = if options.smoke {
        (Duration::ZERO, Duration::from_millis(500))
    } else {
        (Duration::from_millis(500), Duration::from_secs(3))
    };
    let client = scenarios::client(connections)?;
    let url: Arc<str> = url.into();
    let body = Arc::clone(body);
    let stats =
        load::run(connections, warmup, duration, move || load::expect(client.post(&*url).json(&*body), 200)).await?;
    println!(
        "  {:<10} {} ({connections} connections, {workers} hashing workers)",
        "capacity",
        scenarios::describe(&stats)
    );
    scenarios::no_errors("login capacity", &stats)?;
    if stats.requests == 0 {
        anyhow::bail!("no login completed in {} s", duration.as_secs_f64());
    }
    Ok(stats.rps())
}

/// What became of one login of the open-loop generator.
struct Outcome {
    /// Started after the warm-up: part of the measured window.
    measured: bool,
    /// The status, or the transport error.
    status: Result<u16, String>,
    retry_after: bool,
    /// From the scheduled start to the end of the response body.
    latency: Duration,
    /// How late the login's task started against its schedule.
    lag: Duration,
}

/// Step 3's generator: logins at `rate`/s on a fixed schedule for
/// `warmup + duration`, each its own task; resolves when every login has ended.
fn spawn_logins(
    client: reqwest::Client,
    url: String,
    body: Arc<Value>,
    rate: f64,
    warmup: Duration,
    duration: Duration,
) -> JoinHandle<anyhow::Result<Vec<Outcome>>> {
    let url: Arc<str> = url.into();
    tokio::spawn(async move {
        let start = Instant::now();
        let (end, measured_from) = (start + warmup + duration, start + warmup);
        let mut logins = Vec::new();
        for index in 0_u32.. {
            let at = start + Duration::from_secs_f64(f64::from(index) / rate);
            if at >= end {
                break;
            }
            tokio::time::sleep_until(at).await;
            let (client, url, body) = (client.clone(), Arc::clone(&url), Arc::clone(&body));
            logins.push(tokio::spawn(login_once(client, url, body, at, at >= measured_from)));
        }
        let mut outcomes = Vec::with_capacity(logins.len());
        for login in logins {
            outcomes.push(login.await.context("a login task panicked")?);
        }
        Ok(outcomes)
    })
}

/// One login scheduled at `at`.
async fn login_once(client: reqwest::Client, url: Arc<str>, body: Arc<Value>, at: Instant, measured: bool) -> Outcome {
    let lag = at.elapsed();
    let (status, retry_after) = match client.post(&*url).json(&*body).send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key(reqwest::header::RETRY_AFTER);
            match response.bytes().await {
                Ok(_) => (Ok(status), retry_after),
                Err(error) => (Err(format!("reading the body: {error}")), retry_after),
            }
        }
        Err(error) => (Err(error.to_string()), false),
    };
    Outcome { measured, status, retry_after, latency: at.elapsed(), lag }
}

/// The measured logins, by outcome; latencies in µs.
struct Logins {
    sent: u64,
    accepted: Histogram<u64>,
    refused: Histogram<u64>,
    refused_429: u64,
    no_retry_after: u64,
    failed: u64,
    first_failure: Option<String>,
    lag: Histogram<u64>,
}

impl Logins {
    fn tally(outcomes: &[Outcome]) -> anyhow::Result<Self> {
        let mut logins = Self {
            sent: 0,
            accepted: load::histogram()?,
            refused: load::histogram()?,
            refused_429: 0,
            no_retry_after: 0,
            failed: 0,
            first_failure: None,
            lag: load::histogram()?,
        };
        for outcome in outcomes.iter().filter(|outcome| outcome.measured) {
            logins.add(outcome);
        }
        Ok(logins)
    }

    fn add(&mut self, outcome: &Outcome) {
        self.sent += 1;
        self.lag.saturating_record(micros(outcome.lag));
        let latency = micros(outcome.latency);
        match &outcome.status {
            Ok(200) => self.accepted.saturating_record(latency),
            Ok(status @ (429 | 503)) if outcome.retry_after => {
                self.refused.saturating_record(latency);
                self.refused_429 += u64::from(*status == 429);
            }
            Ok(status @ (429 | 503)) => {
                self.no_retry_after += 1;
                self.fail(format!("status {status} without Retry-After"));
            }
            Ok(status) => self.fail(format!("status {status}")),
            Err(error) => self.fail(error.clone()),
        }
    }

    fn fail(&mut self, failure: String) {
        self.failed += 1;
        self.first_failure.get_or_insert(failure);
    }

    fn print(&self, rate: f64, duration: Duration) {
        let refused = self.refused.len();
        println!(
            "  {:<10} {:.1}/s open-loop for {} s: {} sent, {} accepted (200), {refused} refused \
             ({} × 503, {} × 429, all with Retry-After), {} other (failed; incl. {} refusals without Retry-After)",
            "logins",
            rate,
            duration.as_secs_f64(),
            self.sent,
            self.accepted.len(),
            refused - self.refused_429,
            self.refused_429,
            self.failed,
            self.no_retry_after,
        );
        println!("  {:<10} {}", "refused", summary(&self.refused));
        println!(
            "  {:<10} {}, {:.1} logins/s",
            "accepted",
            summary(&self.accepted),
            self.accepted.len() as f64 / duration.as_secs_f64()
        );
        println!("  {:<10} {} (start of a login's task behind its schedule)", "client lag", summary(&self.lag));
    }
}

/// `p50 / p99 / max` of a µs histogram, in ms.
fn summary(histogram: &Histogram<u64>) -> String {
    if histogram.is_empty() {
        return "none".to_owned();
    }
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(histogram, 0.50),
        ms(histogram, 0.99),
        histogram.max() as f64 / 1000.0
    )
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1)
}
