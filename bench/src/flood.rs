//! `body-flood`: concurrent 100 MiB uploads with no length, to an
//! unauthenticated endpoint, over HTTP/1.1 chunked and HTTP/2 with prior
//! knowledge, against the release binary; every one must be answered 413 and
//! the server's resident set must not grow with what was sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::Options;
use crate::scenarios::{Bench, Verdict, parley_command, verdict};

/// A body of `total` bytes in 64 KiB chunks, with no length given.
fn endless_body(total: usize) -> reqwest::Body {
    const CHUNK: usize = 64 * 1024;
    let chunk = vec![b'a'; CHUNK];
    let stream = futures_util::stream::iter((0..total / CHUNK).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    reqwest::Body::wrap_stream(stream)
}

/// One upload's outcome: its status, or the transport error that ended it.
async fn upload(http2: bool, url: String, size: usize) -> Result<u16, String> {
    let builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
    let builder = if http2 { builder.http2_prior_knowledge() } else { builder.http1_only() };
    let client = builder.build().map_err(|e| e.to_string())?;
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(endless_body(size))
        .send()
        .await
        .map_err(|e| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        })?;
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    Ok(status)
}

pub async fn body_flood(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    let (uploads, size) = if options.smoke { (2, 1024 * 1024) } else { (20, 100 * 1024 * 1024) };
    println!(
        "\n== body-flood: {uploads} concurrent {} MiB uploads with no length to POST /api/v1/auth/login, \
         HTTP/1.1 chunked then HTTP/2 prior knowledge, on {}",
        size / (1024 * 1024),
        options.parley_bin.display()
    );
    if !options.parley_bin.is_file() {
        println!("  skipped: {} does not exist (cargo build --release -p parley-server)", options.parley_bin.display());
        return Ok(Vec::new());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut child = parley_command(options, &bench.database.url, port)
        .spawn()
        .with_context(|| format!("spawning {}", options.parley_bin.display()))?;
    let pid = child.id().context("the child has no pid")?;
    let base = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    let started = Instant::now();
    while !probe.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
        if started.elapsed() > Duration::from_secs(15) {
            anyhow::bail!("parley did not answer /health within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = crate::ws::rss_kib(pid)?;
    let peak = Arc::new(AtomicU64::new(before));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (Arc::clone(&peak), Arc::clone(&sampling));
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                if let Ok(kib) = crate::ws::rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let url = format!("{base}/api/v1/auth/login");
    let mut verdicts = Vec::new();
    let mut all_refused = true;
    for (name, http2) in [("HTTP/1.1 chunked", false), ("HTTP/2 prior knowledge", true)] {
        let sent = Instant::now();
        let outcomes = futures_util::future::join_all((0..uploads).map(|_| upload(http2, url.clone(), size))).await;
        let refused = outcomes.iter().filter(|outcome| matches!(outcome, Ok(413))).count();
        let other: Vec<&Result<u16, String>> = outcomes.iter().filter(|outcome| !matches!(outcome, Ok(413))).collect();
        println!(
            "  {name}: {refused} of {uploads} answered 413 in {:.0} ms{}",
            sent.elapsed().as_secs_f64() * 1000.0,
            other.first().map_or(String::new(), |first| format!("; first other outcome: {first:?}"))
        );
        all_refused &= refused == uploads;
    }
    sampling.store(false, Ordering::Relaxed);
    let _ = sampler.await;
    let after = crate::ws::rss_kib(pid)?;
    let peak = peak.load(Ordering::Relaxed);
    let _ = child.kill().await;
    let growth_mb = (peak.saturating_sub(before)) as f64 * 1024.0 / 1_000_000.0;
    println!(
        "  server RSS {:.1} MiB before, peak {:.1} MiB, {:.1} MiB after",
        crate::ws::mib(before),
        crate::ws::mib(peak),
        crate::ws::mib(after)
    );
    verdicts.push(verdict(
        "body-flood",
        format!("all {} uploads answered 413", uploads * 2),
        if all_refused { "all 413".to_owned() } else { "not all 413".to_owned() },
        all_refused,
    ));
    verdicts.push(verdict(
        "body-flood",
        "server RSS growth ≤ 20 MB".to_owned(),
        format!("{growth_mb:.1} MB (peak over before)"),
        growth_mb <= 20.0,
    ));
    Ok(verdicts)
}
