//! A closed-loop load generator: `concurrency` workers each send one request
//! at a time until the deadline; latencies go into an HDR histogram.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;

/// What one timed run measured.
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Latencies in microseconds.
    pub latency: Histogram<u64>,
}

impl Stats {
    #[must_use]
    pub fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Both runs as one: their requests, errors, time and latencies added up.
    ///
    /// # Errors
    /// If the histograms cannot be merged.
    pub fn merge(mut self, other: Self) -> anyhow::Result<Self> {
        self.requests += other.requests;
        self.errors += other.errors;
        self.first_error = self.first_error.or(other.first_error);
        self.elapsed += other.elapsed;
        self.latency.add(&other.latency).context("merging histograms")?;
        Ok(self)
    }

    /// The latency at `quantile` in milliseconds.
    #[must_use]
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs .. 60 s, three significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram bounds")
}

/// Runs `request` from `concurrency` workers: a warm-up (discarded), then `duration` measured.
///
/// # Errors
/// If a worker task panics.
pub async fn run<F, Fut>(concurrency: usize, warmup: Duration, duration: Duration, request: F) -> anyhow::Result<Stats>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let request = Arc::new(request);
    if !warmup.is_zero() {
        drive(concurrency, warmup, &request).await?;
    }
    drive(concurrency, duration, &request).await
}

async fn drive<F, Fut>(concurrency: usize, duration: Duration, request: &Arc<F>) -> anyhow::Result<Stats>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let request = Arc::clone(request);
        workers.push(tokio::spawn(async move {
            let mut latency = histogram()?;
            let (mut requests, mut errors, mut first_error) = (0_u64, 0_u64, None);
            while Instant::now() < deadline {
                let sent = Instant::now();
                let outcome = request().await;
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                latency.saturating_record(micros.max(1));
                requests += 1;
                if let Err(error) = outcome {
                    errors += 1;
                    first_error.get_or_insert_with(|| format!("{error:#}"));
                }
            }
            Ok::<_, anyhow::Error>((latency, requests, errors, first_error))
        }));
    }
    let mut total = Stats { requests: 0, errors: 0, first_error: None, elapsed: Duration::ZERO, latency: histogram()? };
    for worker in workers {
        let (latency, requests, errors, first_error) = worker.await.context("a load worker panicked")??;
        total.latency.add(&latency).context("merging histograms")?;
        total.requests += requests;
        total.errors += errors;
        if total.first_error.is_none() {
            total.first_error = first_error;
        }
    }
    total.elapsed = start.elapsed();
    Ok(total)
}

/// Sends `request`, reads the whole body, and fails unless the status is `expected`.
///
/// # Errors
/// A transport error or an unexpected status.
pub async fn expect(request: reqwest::RequestBuilder, expected: u16) -> anyhow::Result<()> {
    let response = request.send().await?;
    let status = response.status();
    let body = response.bytes().await?;
    if status.as_u16() != expected {
        anyhow::bail!("status {status}, body {}", String::from_utf8_lossy(&body));
    }
    Ok(())
}
