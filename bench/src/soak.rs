//! `soak`: a spawned release `parley` under a steady mixed load for a
//! minute — 500 WebSocket clients in 50 rooms, each saying something every
//! 5 s (the spirit answers), plus HTTP clients reading and writing tasks and
//! chatting with the offline assistant — while its RSS is read every second.
//! Targets: no error of any kind, and RSS growth from second 10 to the end
//! at most 10 % (a leak grows with time, a cache or pool does not).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use crate::Options;
use crate::scenarios::{self, Bench, Verdict};
use crate::ws::{self, Socket, Spawned};

/// Rooms, and clients per room (one connection per user per room).
const ROOMS: usize = 50;
const PER_ROOM: usize = 10;
/// How often each WebSocket client speaks.
const SPEAK_EVERY: Duration = Duration::from_secs(5);
/// HTTP clients: each loops list, create, chat.
const HTTP_CLIENTS: usize = 4;
/// The first RSS reading that counts, and the allowed growth after it.
const SETTLED_AT: Duration = Duration::from_secs(10);
const GROWTH_TARGET: f64 = 0.10;

/// What went wrong, counted.
#[derive(Default)]
struct Errors {
    ws: AtomicU64,
    http: AtomicU64,
    first: std::sync::Mutex<Option<String>>,
}

impl Errors {
    fn note(&self, counter: &AtomicU64, what: String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        first.get_or_insert(what);
    }
}

/// One WebSocket client: reads everything, speaks every [`SPEAK_EVERY`] (offset by `index`), until `stop`.
async fn client(
    mut socket: Socket,
    index: usize,
    mut stop: watch::Receiver<bool>,
    errors: Arc<Errors>,
    received: Arc<AtomicU64>,
) {
    let offset = SPEAK_EVERY.mul_f64((index % 97) as f64 / 97.0);
    let mut next = tokio::time::Instant::now() + offset;
    let mut said = 0_u64;
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    received.fetch_add(1, Ordering::Relaxed);
                    if text.as_str().contains("\"event\":\"error\"") {
                        errors.note(&errors.ws, format!("client {index}: {}", text.as_str()));
                    }
                }
                Some(Ok(Message::Close(close))) => {
                    errors.note(&errors.ws, format!("client {index} closed by the server: {close:?}"));
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    errors.note(&errors.ws, format!("client {index}: {error}"));
                    return;
                }
                None => {
                    errors.note(&errors.ws, format!("client {index}: the connection ended"));
                    return;
                }
            },
            () = tokio::time::sleep_until(next) => {
                said += 1;
                let text = ws::frame("send_message", &json!({"message": format!("soak {index} #{said}")}));
                if socket.send(Message::text(text)).await.is_err() {
                    errors.note(&errors.ws, format!("client {index}: send failed"));
                    return;
                }
                next += SPEAK_EVERY;
            }
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
                return;
            }
        }
    }
}

/// One HTTP client: list tasks, create one, chat, again, until `stop`.
async fn http(
    address: String,
    token: String,
    mut stop: watch::Receiver<bool>,
    errors: Arc<Errors>,
    done: Arc<AtomicU64>,
) {
    let Ok(client) = scenarios::client(1) else { return };
    let mut conversation: Option<String> = None;
    let mut n = 0_u64;
    while !*stop.borrow_and_update() {
        n += 1;
        let requests: [(reqwest::Method, String, Option<Value>); 3] = [
            (reqwest::Method::GET, format!("{address}/api/v1/tasks?limit=20"), None),
            (
                reqwest::Method::POST,
                format!("{address}/api/v1/tasks"),
                Some(json!({"title": format!("soak task {n}")})),
            ),
            (
                reqwest::Method::POST,
                format!("{address}/api/v1/chat"),
                Some(json!({"message": "list my tasks", "conversation_id": conversation})),
            ),
        ];
        for (method, url, body) in requests {
            let mut request = client.request(method, &url).bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    if url.ends_with("/chat")
                        && let Ok(body) = response.json::<Value>().await
                    {
                        conversation = body["data"]["conversation_id"].as_str().map(str::to_owned);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(response) => errors.note(&errors.http, format!("{url}: {}", response.status())),
                Err(error) => errors.note(&errors.http, format!("{url}: {error}")),
            }
        }
    }
}

/// `soak`: see the module documentation.
///
/// # Errors
/// If the server cannot start or a client cannot join.
pub async fn soak(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    // 60 s, or longer with `--duration` (to see whether a growth levels off).
    let (rooms, duration) = if options.smoke {
        (5, Duration::from_secs(6))
    } else {
        (ROOMS, options.duration.max(Duration::from_secs(60)))
    };
    let settled_at = if options.smoke { Duration::from_secs(2) } else { SETTLED_AT };
    println!(
        "\n== soak: {} WebSocket clients in {rooms} rooms (one message each every {} s) and {HTTP_CLIENTS} HTTP \
         clients (list, create, chat), {} s against a spawned {}",
        rooms * PER_ROOM,
        SPEAK_EVERY.as_secs(),
        duration.as_secs(),
        options.parley_bin.display()
    );
    if !options.parley_bin.is_file() {
        println!("  skipped: {} does not exist (cargo build --release -p parley-server)", options.parley_bin.display());
        return Ok(Vec::new());
    }
    let tokens = ws::register_users(bench, "soaker", PER_ROOM).await?;
    let mut sessions = Vec::new();
    for room in 0..rooms {
        let host = &tokens[room % tokens.len()];
        sessions.push(ws::create_session(bench, host, &format!("Soak room {room}"), PER_ROOM).await?);
    }
    let server = Spawned::start(options, &bench.database.url).await?;
    let (stop, stopped) = watch::channel(false);
    let errors = Arc::new(Errors::default());
    let received = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let sockets: Vec<Socket> = futures_util::stream::iter(0..rooms * PER_ROOM)
        .map(|index| {
            let url = ws::room_url(&server.address, &sessions[index % rooms]);
            let token = tokens[index / rooms].clone();
            async move { ws::open_joined(&url, &token).await.with_context(|| format!("soak client {index}")) }
        })
        .buffer_unordered(50)
        .try_collect()
        .await?;
    let mut tasks = Vec::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        tasks.push(tokio::spawn(client(socket, index, stopped.clone(), Arc::clone(&errors), Arc::clone(&received))));
    }
    for index in 0..HTTP_CLIENTS {
        let token = tokens[index % tokens.len()].clone();
        tasks.push(tokio::spawn(http(
            server.address.clone(),
            token,
            stopped.clone(),
            Arc::clone(&errors),
            Arc::clone(&served),
        )));
    }
    let started = Instant::now();
    let mut readings = Vec::new();
    while started.elapsed() < duration {
        tokio::time::sleep(Duration::from_secs(1)).await;
        readings.push((started.elapsed(), server.rss()?));
    }
    let curve: Vec<String> = readings
        .iter()
        .filter(|(at, _)| at.as_secs() % 10 == 0)
        .map(|(at, kib)| format!("{} s {:.1}", at.as_secs(), ws::mib(*kib)))
        .collect();
    println!("  {:<10} MiB every 10 s: {}", "rss curve", curve.join(", "));
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    server.stop().await?;

    let settled = readings.iter().find(|(at, _)| *at >= settled_at).map_or(0, |(_, kib)| *kib);
    let last = readings.last().map_or(0, |(_, kib)| *kib);
    let peak = readings.iter().map(|(_, kib)| *kib).max().unwrap_or(0);
    let growth = if settled == 0 { 0.0 } else { (last as f64 - settled as f64) / settled as f64 };
    let (ws_errors, http_errors) = (errors.ws.load(Ordering::Relaxed), errors.http.load(Ordering::Relaxed));
    println!(
        "  {:<10} {} HTTP requests served, {} WebSocket frames received",
        "load",
        served.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed)
    );
    println!(
        "  {:<10} at {} s {:.1} MiB, at the end {:.1} MiB ({:+.1} %), peak {:.1} MiB",
        "rss",
        settled_at.as_secs(),
        ws::mib(settled),
        ws::mib(last),
        growth * 100.0,
        ws::mib(peak)
    );
    let first = errors.first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    println!(
        "  {:<10} {ws_errors} WebSocket, {http_errors} HTTP{}",
        "errors",
        first.map_or_else(String::new, |f| format!(" (first: {f})"))
    );
    Ok(vec![
        scenarios::verdict(
            "soak",
            "zero errors".to_owned(),
            format!("{ws_errors} WebSocket + {http_errors} HTTP"),
            ws_errors + http_errors == 0,
        ),
        scenarios::verdict(
            "soak",
            format!("RSS growth from second {} to the end ≤ 10 %", settled_at.as_secs()),
            format!("{:.1} → {:.1} MiB ({:+.1} %)", ws::mib(settled), ws::mib(last), growth * 100.0),
            growth <= GROWTH_TARGET,
        ),
    ])
}
