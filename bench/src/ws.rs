//! The WebSocket scenarios of issue 7.
//!
//! - `ws-broadcast`: 1,000 connections in one séance room (50 users × 20
//!   tabs; a room holds at most 50 distinct users, and one user's tabs count
//!   once). A message goes into the room every [`MESSAGE_INTERVAL`], each time
//!   from the next connection; every connection, the sender's included, notes
//!   when its `message_received` arrives. Latency is arrival − send on the
//!   bench process's clock, for every message × every connection. The
//!   baseline is a bare tokio-tungstenite broadcast server (every text frame
//!   from any client goes to all clients through a `tokio::sync::broadcast`
//!   channel), driven by the same client code, connection count and pace,
//!   with a frame of the same shape and size as Parley's `message_received`.
//! - `ws-idle`: 10,000 connections, each joined to one of 200 sessions (50
//!   users each), to a separately spawned release `parley` (a process may hold
//!   20,000 descriptors: 10,000 client sockets here plus 10,000 server sockets
//!   there fit only in two processes); the server's `VmRSS` before, once all
//!   are joined, after [`IDLE_PAUSE`] idle, and its peak, sampled throughout.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Options;
use crate::load;
use crate::scenarios::{self, Bench, Verdict};

/// A client connection.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long one connect-and-join may take before the scenario fails.
const JOIN_WAIT: Duration = Duration::from_secs(30);
/// Registrations in flight at once: argon2 makes each one slow on purpose.
const REGISTER_CONCURRENCY: usize = 3;
/// How often a registration answered `503 SERVICE_BUSY` is tried again.
const REGISTER_ATTEMPTS: usize = 50;
/// The most distinct users a session admits (`max_users` is 2..=50).
const ROOM_USERS: usize = 50;

/// One message into the room this often, from the next connection in turn:
/// far below the per-connection flood limit (5 messages/s).
const MESSAGE_INTERVAL: Duration = Duration::from_millis(100);
/// How long after the last message its deliveries may still arrive; any
/// delivery missing then is lost, and fails the scenario.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Broadcast connections being opened (and joined) at once.
const BROADCAST_CONNECT_CONCURRENCY: usize = 50;
/// The text every measured message starts with, followed by its sequence number and `]`.
const MARKER: &str = "[bench ";

/// Idle connections being opened (and joined) at once.
const IDLE_CONNECT_CONCURRENCY: usize = 150;
/// How long the joined connections stay idle before the last RSS reading.
const IDLE_PAUSE: Duration = Duration::from_secs(2);
/// How often the spawned server's RSS is sampled for its peak.
const RSS_SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The RSS target in MB (10^6 bytes).
const RSS_TARGET_MB: f64 = 200.0;

// ---------------------------------------------------------------- clients --

/// `ws://…/api/v1/sessions/{session}/ws` on the server at `address` (`http://host:port`).
pub(crate) fn room_url(address: &str, session: &str) -> String {
    format!("ws://{}/api/v1/sessions/{session}/ws", address.trim_start_matches("http://"))
}

/// One client frame as text.
pub(crate) fn frame(event: &str, data: &Value) -> String {
    json!({ "event": event, "data": data }).to_string()
}

/// The configuration of every socket the bench itself runs, the clients' and
/// the bare baseline server's: a 4 KiB read buffer. tungstenite's default is
/// 128 KiB, and it zero-fills the free part of that buffer before every read
/// attempt, including each poll of an idle socket that ends in `WouldBlock`:
/// a 128 KiB `memset` every time a connection task wakes up for anything.
/// That would load the bench's clients, and slow the baseline for reasons
/// that have nothing to do with broadcasting; 10,000 idle clients would also
/// hold 1.3 GB. The frames here are far smaller than 4 KiB. Parley keeps its own settings.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4 * 1024)
}

/// Opens a WebSocket to `url` (`TCP_NODELAY` on), with `token` as the upgrade's bearer token.
async fn open(url: &str, token: Option<&str>) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request().context("a WebSocket URL")?;
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().context("a bearer header")?;
        request.headers_mut().insert("authorization", value);
    }
    let (socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(socket_config()), true)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    Ok(socket)
}

/// Sends `join` (the token went in the upgrade header) and waits for `joined`,
/// skipping other events; a refusal is an error.
async fn join(socket: &mut Socket) -> anyhow::Result<()> {
    socket.send(Message::text(frame("join", &json!({})))).await.context("sending join")?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).context("a JSON frame")?;
                match frame["event"].as_str() {
                    Some("joined") => return Ok(()),
                    Some("error") => anyhow::bail!("join refused: {}", frame["data"]),
                    _ => {}
                }
            }
            Some(Ok(Message::Close(close))) => anyhow::bail!("closed before joined: {close:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error).context("reading until joined"),
            None => anyhow::bail!("the connection ended before joined"),
        }
    }
}

/// Opens a connection to a séance room and joins it, within [`JOIN_WAIT`].
pub(crate) async fn open_joined(url: &str, token: &str) -> anyhow::Result<Socket> {
    let joining = async {
        let mut socket = open(url, Some(token)).await?;
        join(&mut socket).await?;
        Ok(socket)
    };
    tokio::time::timeout(JOIN_WAIT, joining).await.context("no joined within 30 s")?
}

/// Registers one user, trying again while the server answers `503 SERVICE_BUSY`; returns its token.
async fn register(bench: &Bench, name: String) -> anyhow::Result<String> {
    for _ in 1..REGISTER_ATTEMPTS {
        match bench.register(&name).await {
            Ok((_, token)) => return Ok(token),
            Err(error) if format!("{error:#}").contains("503") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error),
        }
    }
    Ok(bench.register(&name).await?.1)
}

/// Registers `count` users named `<prefix>-NN`, a few at a time; returns their tokens.
pub(crate) async fn register_users(bench: &Bench, prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
    futures_util::stream::iter(0..count)
        .map(|index| register(bench, format!("{prefix}-{index:02}")))
        .buffered(REGISTER_CONCURRENCY)
        .try_collect()
        .await
        .context("registering the room's users")
}

/// Creates a séance session hosted by `token`'s user; returns its id.
pub(crate) async fn create_session(bench: &Bench, token: &str, name: &str, max_users: usize) -> anyhow::Result<String> {
    create_session_at(&bench.client, &bench.address, token, name, max_users).await
}

/// [`create_session`] on the Parley at `address`.
pub(crate) async fn create_session_at(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    name: &str,
    max_users: usize,
) -> anyhow::Result<String> {
    let response = client
        .post(format!("{address}/api/v1/sessions"))
        .bearer_auth(token)
        .json(&json!({ "name": name, "max_users": max_users }))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.context("create session: a JSON body")?;
    if status.as_u16() != 201 {
        anyhow::bail!("create session answered {status}: {body}");
    }
    Ok(body["data"]["id"].as_str().context("create session: the id")?.to_owned())
}

// ----------------------------------------------------- the bare baseline --

/// Starts the baseline: a bare tokio-tungstenite server on a free port that
/// sends every text frame from any client to every connected client (`TCP_NODELAY`
/// on, the read buffer of [`socket_config`]); returns its `ws://` URL.
async fn bare_broadcast_server() -> anyhow::Result<String> {
    scenarios::on_servers(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.context("binding the bare broadcast server")?;
        let port = listener.local_addr()?.port();
        let (room, _) = broadcast::channel::<Utf8Bytes>(256);
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(bare_connection(stream, room.clone()));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        Ok(format!("ws://127.0.0.1:{port}/"))
    })
    .await?
}

/// One client of the bare server: its text frames into the room, the room's frames out to it.
/// A client that falls more than the channel's capacity behind is dropped, as Parley drops one.
async fn bare_connection(stream: TcpStream, room: broadcast::Sender<Utf8Bytes>) {
    let Ok(socket) = tokio_tungstenite::accept_async_with_config(stream, Some(socket_config())).await else { return };
    let (mut sink, mut stream) = socket.split();
    let mut events = room.subscribe();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let _ = room.send(text);
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
            event = events.recv() => match event {
                Ok(text) => {
                    if sink.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
        }
    }
}

// -------------------------------------------------------------- broadcast --

/// Users and tabs (connections per user) in the broadcast room.
struct Shape {
    users: usize,
    tabs: usize,
}

impl Shape {
    fn of(options: &Options) -> Self {
        if options.smoke { Self { users: 5, tabs: 4 } } else { Self { users: ROOM_USERS, tabs: 20 } }
    }

    fn members(&self) -> usize {
        self.users * self.tabs
    }
}

/// The frame a member sends to say message `seq`.
#[derive(Clone, Copy)]
enum Speech {
    /// Parley's `send_message`; the server answers everyone with `message_received`.
    Parley,
    /// For the bare server, which relays frames as they are: a frame of the
    /// shape and size of Parley's `message_received`.
    Bare,
}

/// The text of message `seq`; [`seq_of`] reads the number back.
fn say(seq: usize) -> String {
    format!("{MARKER}{seq}] Is anyone there? The candles are flickering again.")
}

fn seq_of(message: &str) -> Option<usize> {
    message.strip_prefix(MARKER)?.split(']').next()?.parse().ok()
}

impl Speech {
    fn frame(self, seq: usize, member: usize) -> String {
        const STAMP: &str = "2026-11-22T10:00:00.000000Z";
        match self {
            Self::Parley => frame("send_message", &json!({ "message": say(seq) })),
            Self::Bare => json!({
                "event": "message_received",
                "timestamp": STAMP,
                "data": {
                    "id": "0193a8c4-0000-7000-8000-000000000000",
                    "session_id": "0193a8c2-0000-7000-8000-000000000000",
                    "user_id": "0193a8b1-0000-7000-8000-000000000000",
                    "user_name": format!("bench-{:02}", member % ROOM_USERS),
                    "message": say(seq),
                    "is_spirit": false,
                    "timestamp": STAMP,
                },
            })
            .to_string(),
        }
    }
}

/// What every member shares: when each message was sent, and how many deliveries arrived.
#[derive(Default)]
struct Tally {
    sent: Mutex<HashMap<usize, Instant>>,
    delivered: AtomicU64,
}

impl Tally {
    fn sent(&self) -> std::sync::MutexGuard<'_, HashMap<usize, Instant>> {
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What one member connection saw.
#[derive(Default)]
struct Heard {
    /// `message_received` of message `seq`, at this instant.
    arrivals: Vec<(usize, Instant)>,
    /// The codes of the `error` events it got.
    errors: Vec<String>,
    /// Why it ended before it was told to, if it did.
    ended: Option<String>,
}

impl Heard {
    /// Notes a text frame that arrived `at`. Only frames that may matter are parsed.
    fn note(&mut self, text: &str, at: Instant, tally: &Tally) {
        let marked = text.contains(MARKER);
        if !marked && !text.contains("\"error\"") {
            return;
        }
        let Ok(frame) = serde_json::from_str::<Value>(text) else { return };
        match frame["event"].as_str() {
            Some("message_received") if marked => {
                if let Some(seq) = frame["data"]["message"].as_str().and_then(seq_of) {
                    self.arrivals.push((seq, at));
                    tally.delivered.fetch_add(1, Ordering::Relaxed);
                }
            }
            Some("error") => self.errors.push(frame["data"]["code"].as_str().unwrap_or("?").to_owned()),
            _ => {}
        }
    }
}

/// One connection of the room: told which messages to send, reading all the time.
struct Member {
    speak: mpsc::Sender<usize>,
    task: JoinHandle<Heard>,
}

impl Member {
    fn spawn(socket: Socket, index: usize, speech: Speech, tally: Arc<Tally>) -> Self {
        let (speak, told) = mpsc::channel(4);
        Self { speak, task: tokio::spawn(listen(socket, index, speech, told, tally)) }
    }
}

/// Reads the connection until `told` closes, sending each message it is told to.
async fn listen(
    socket: Socket,
    index: usize,
    speech: Speech,
    mut told: mpsc::Receiver<usize>,
    tally: Arc<Tally>,
) -> Heard {
    let (mut sink, mut stream) = socket.split();
    let mut heard = Heard::default();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => heard.note(text.as_str(), Instant::now(), &tally),
                Some(Ok(Message::Close(close))) => {
                    heard.ended = Some(format!("closed by the server ({close:?})"));
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    heard.ended = Some(format!("read failed: {error}"));
                    break;
                }
                None => {
                    heard.ended = Some("the server went away".to_owned());
                    break;
                }
            },
            seq = told.recv() => {
                let Some(seq) = seq else {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                };
                let text = speech.frame(seq, index);
                tally.sent().insert(seq, Instant::now());
                if let Err(error) = sink.send(Message::text(text)).await {
                    heard.ended = Some(format!("send failed: {error}"));
                    break;
                }
            }
        }
    }
    heard
}

/// Where the members of one run connect.
struct Room {
    label: &'static str,
    /// Member `i` connects to `urls[i % urls.len()]`.
    urls: Vec<String>,
    /// One per user, used round-robin; empty for the bare server (no join there).
    tokens: Vec<String>,
    speech: Speech,
    members: usize,
}

/// Opens (and joins) every member of `room`, a few at a time; each reads from the moment it is in.
async fn gather(room: &Room, tally: &Arc<Tally>) -> anyhow::Result<Vec<Member>> {
    futures_util::stream::iter(0..room.members)
        .map(|index| {
            let token = (!room.tokens.is_empty()).then(|| room.tokens[index % room.tokens.len()].clone());
            let tally = Arc::clone(tally);
            async move {
                let socket = match token {
                    Some(token) => open_joined(&room.urls[index % room.urls.len()], &token).await,
                    None => open(&room.urls[index % room.urls.len()], None).await,
                }
                .with_context(|| format!("{}: connection {index}", room.label))?;
                Ok::<_, anyhow::Error>(Member::spawn(socket, index, room.speech, tally))
            }
        })
        .buffered(BROADCAST_CONNECT_CONCURRENCY)
        .try_collect()
        .await
}

/// Sends a message every [`MESSAGE_INTERVAL`] for `duration`, each from the next member.
/// A member the server dropped cannot send; its message is skipped (its losses are counted).
async fn speak(members: &[Member], next: &mut usize, duration: Duration) {
    let deadline = Instant::now() + duration;
    let mut ticker = tokio::time::interval(MESSAGE_INTERVAL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if Instant::now() >= deadline {
            return;
        }
        let _ = members[*next % members.len()].speak.send(*next).await;
        *next += 1;
    }
}

/// Waits until every message sent reached every member, or [`DELIVERY_TIMEOUT`].
async fn await_deliveries(tally: &Tally, members: usize) {
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    while Instant::now() < deadline {
        let expected = tally.sent().len() * members;
        if usize::try_from(tally.delivered.load(Ordering::Relaxed)).unwrap_or(usize::MAX) >= expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Tells every member to close, and collects what each heard.
async fn disperse(members: Vec<Member>) -> anyhow::Result<Vec<Heard>> {
    let tasks: Vec<_> = members.into_iter().map(|member| member.task).collect();
    let mut heard = Vec::with_capacity(tasks.len());
    for task in tasks {
        heard.push(task.await.context("a member task panicked")?);
    }
    Ok(heard)
}

/// The CPU time this process (bench clients and in-process servers alike) has
/// used so far, from /proc/self/stat (`utime` + `stime`, in the kernel's
/// `USER_HZ` = 100 ticks a second).
fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // the state is field 3, utime field 14 and stime field 15.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("a /proc/self/stat line")?;
    let field = |index: usize| rest.split_whitespace().nth(index).and_then(|v| v.parse::<u64>().ok());
    let ticks = field(11).zip(field(12)).map(|(user, system)| user + system).context("utime and stime")?;
    Ok(Duration::from_millis(ticks * 10))
}

/// What one broadcast run measured.
struct Outcome {
    members: usize,
    /// Messages sent in the measured part (after the warm-up).
    messages: usize,
    /// Their deliveries that arrived.
    deliveries: u64,
    /// Deliveries of any message (warm-up included) that never arrived.
    lost: usize,
    elapsed: Duration,
    /// Arrival − send, microseconds, measured messages × members.
    latency: Histogram<u64>,
    /// Per measured message, its first and its last arrival − send, microseconds:
    /// how long until the server relays it, and until every member has it.
    first: Histogram<u64>,
    last: Histogram<u64>,
    /// CPU time of the whole bench process during the measured part and its deliveries.
    cpu: Duration,
    errors: Vec<String>,
    ended: Vec<String>,
}

impl Outcome {
    fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }

    fn describe(&self) -> String {
        let mut text = format!(
            "{} messages × {} members = {} deliveries ({:.0}/s), p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            self.messages,
            self.members,
            self.deliveries,
            self.deliveries as f64 / self.elapsed.as_secs_f64(),
            self.ms(0.50),
            self.ms(0.99),
            self.ms(0.999),
            self.latency.max() as f64 / 1000.0,
        );
        text.push_str(&format!(
            "; bench process CPU {:.1} ms per message",
            self.cpu.as_secs_f64() * 1000.0 / self.messages.max(1) as f64
        ));
        if self.lost > 0 {
            text.push_str(&format!(", {} deliveries LOST", self.lost));
        }
        if let Some(first) = self.errors.first() {
            text.push_str(&format!(", {} error events (first: {first})", self.errors.len()));
        }
        if let Some(first) = self.ended.first() {
            text.push_str(&format!(", {} connections ended early (first: {first})", self.ended.len()));
        }
        text
    }

    /// How the latency splits, per message: until its first delivery, until its last.
    fn describe_spread(&self) -> String {
        let ms = |histogram: &Histogram<u64>, quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
        format!(
            "per message, first delivery p50 {:.2} ms, max {:.2} ms; last delivery p50 {:.2} ms, max {:.2} ms",
            ms(&self.first, 0.5),
            ms(&self.first, 1.0),
            ms(&self.last, 0.5),
            ms(&self.last, 1.0)
        )
    }

    /// Fails the run if a delivery was lost: the latencies would leave out the worst.
    fn no_losses(&self, label: &str) -> anyhow::Result<()> {
        if self.lost > 0 {
            anyhow::bail!("{label}: {} deliveries never arrived within {DELIVERY_TIMEOUT:?}", self.lost);
        }
        Ok(())
    }
}

/// Latencies of the messages from `first_measured` on; losses of all of them.
fn tally_up(
    heard: Vec<Heard>,
    sent: &HashMap<usize, Instant>,
    first_measured: usize,
    (elapsed, cpu): (Duration, Duration),
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome {
        members: heard.len(),
        messages: sent.keys().filter(|seq| **seq >= first_measured).count(),
        deliveries: 0,
        lost: 0,
        elapsed,
        latency: load::histogram()?,
        first: load::histogram()?,
        last: load::histogram()?,
        cpu,
        errors: Vec::new(),
        ended: Vec::new(),
    };
    let mut received = 0;
    let mut spread: HashMap<usize, (u64, u64)> = HashMap::new();
    for member in heard {
        let mut seen = HashSet::new();
        for (seq, at) in member.arrivals {
            let Some(sent_at) = sent.get(&seq) else { continue };
            if !seen.insert(seq) {
                continue;
            }
            received += 1;
            if seq >= first_measured {
                let micros = u64::try_from(at.saturating_duration_since(*sent_at).as_micros()).unwrap_or(u64::MAX);
                outcome.latency.saturating_record(micros.max(1));
                outcome.deliveries += 1;
                let (first, last) = spread.entry(seq).or_insert((micros, micros));
                (*first, *last) = ((*first).min(micros), (*last).max(micros));
            }
        }
        outcome.errors.extend(member.errors);
        outcome.ended.extend(member.ended);
    }
    outcome.lost = (sent.len() * outcome.members).saturating_sub(received);
    for (first, last) in spread.into_values() {
        outcome.first.saturating_record(first.max(1));
        outcome.last.saturating_record(last.max(1));
    }
    Ok(outcome)
}

/// Connects `room`'s members, runs the warm-up (discarded) and the measured part, closes them.
async fn run_room(room: &Room, options: &Options) -> anyhow::Result<Outcome> {
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    let members = gather(room, &tally).await?;
    let verb = if room.tokens.is_empty() { "open" } else { "joined" };
    println!(
        "  {:<10} {}: {} connections {verb} in {:.1} s",
        "setup",
        room.label,
        members.len(),
        started.elapsed().as_secs_f64()
    );
    let mut next = 0;
    speak(&members, &mut next, options.warmup).await;
    let first_measured = next;
    let (measuring, cpu_before) = (Instant::now(), process_cpu()?);
    speak(&members, &mut next, options.duration).await;
    let elapsed = measuring.elapsed();
    await_deliveries(&tally, members.len()).await;
    let cpu = process_cpu()?.saturating_sub(cpu_before);
    let heard = disperse(members).await?;
    let sent = std::mem::take(&mut *tally.sent());
    tally_up(heard, &sent, first_measured, (elapsed, cpu))
}

/// Parley's room: `shape.users` users, one session for them, `shape.tabs` connections each.
async fn parley_room(bench: &Bench, shape: &Shape) -> anyhow::Result<Room> {
    let started = Instant::now();
    let tokens = register_users(bench, "medium", shape.users).await?;
    let host = tokens.first().context("no users")?;
    let session = create_session(bench, host, "The crowded parlour", shape.users.max(2)).await?;
    println!(
        "  {:<10} parley: {} users registered, session created in {:.1} s",
        "setup",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(Room {
        label: "parley",
        urls: vec![room_url(&bench.address, &session)],
        tokens,
        speech: Speech::Parley,
        members: shape.members(),
    })
}

/// `ws-broadcast`: see the module documentation.
///
/// # Errors
/// If a connection cannot be opened or joined, or a delivery is lost.
pub async fn broadcast(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    let shape = Shape::of(options);
    println!(
        "\n== ws-broadcast: {} connections ({} users × {}) in one room, a message every {} ms from the next one; \
         vs a bare tokio-tungstenite broadcast server",
        shape.members(),
        shape.users,
        shape.tabs,
        MESSAGE_INTERVAL.as_millis()
    );
    let bare = Room {
        label: "baseline",
        urls: vec![bare_broadcast_server().await?],
        tokens: Vec::new(),
        speech: Speech::Bare,
        members: shape.members(),
    };
    let baseline = run_room(&bare, options).await?;
    println!("  {:<10} {}", "baseline", baseline.describe());
    println!("  {:<10} {}", "", baseline.describe_spread());
    baseline.no_losses("bare broadcast server")?;
    let room = parley_room(bench, &shape).await?;
    let parley = run_room(&room, options).await?;
    println!("  {:<10} {}", "parley", parley.describe());
    println!("  {:<10} {}", "", parley.describe_spread());
    parley.no_losses("ws-broadcast")?;
    let (p99, base_p99) = (parley.ms(0.99), baseline.ms(0.99));
    let ratio = p99 / base_p99;
    Ok(vec![
        scenarios::verdict(
            "ws-broadcast",
            "p99 ≤ 1.3× bare tokio-tungstenite p99".to_owned(),
            format!("p99 {p99:.2} / {base_p99:.2} ms = {ratio:.2}×"),
            ratio <= 1.3,
        ),
        scenarios::verdict("ws-broadcast", "p99 ≤ 50 ms".to_owned(), format!("p99 {p99:.2} ms"), p99 <= 50.0),
    ])
}

/// `ws-broadcast-2`: the `ws-broadcast` room with its members split over two
/// in-process instances sharing the bench database and one Redis
/// (`BENCH_REDIS_URL`, default `redis://127.0.0.1:6379`, under a prefix of
/// its own that is deleted after), against the same room on one instance
/// without Redis, in the same run.
///
/// # Errors
/// If a connection cannot be opened or joined, or a delivery is lost.
pub async fn broadcast_two(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    let shape = Shape::of(options);
    println!(
        "\n== ws-broadcast-2: {} connections ({} users × {}) in one room split over two instances through Redis, \
         a message every {} ms; vs one instance without Redis",
        shape.members(),
        shape.users,
        shape.tabs,
        MESSAGE_INTERVAL.as_millis()
    );
    let single_room = parley_room(bench, &shape).await?;
    let single = run_room(&single_room, options).await?;
    println!("  {:<10} {}", "one", single.describe());
    println!("  {:<10} {}", "", single.describe_spread());
    single.no_losses("ws-broadcast-2, one instance")?;

    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let redis = parley_tests::TestRedis::on(&redis_url);
    let shared: Vec<(&str, String)> = redis.settings().into_iter().collect();
    let shared: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = scenarios::serve_in_process(&bench.database.url, &shared).await?;
    let b = scenarios::serve_in_process(&bench.database.url, &shared).await?;
    let mut room = parley_room(bench, &shape).await?;
    let session = room.urls[0].rsplit('/').nth(1).context("a room URL")?.to_owned();
    room.urls = vec![room_url(&a, &session), room_url(&b, &session)];
    room.label = "two";
    let two = run_room(&room, options).await?;
    println!("  {:<10} {}", "two", two.describe());
    println!("  {:<10} {}", "", two.describe_spread());
    // The instances record the members' leaving after they closed: let them, then delete the keys.
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(redis);
    two.no_losses("ws-broadcast-2, two instances")?;
    let (p99, single_p99) = (two.ms(0.99), single.ms(0.99));
    let ratio = p99 / single_p99;
    Ok(vec![scenarios::verdict(
        "ws-broadcast-2",
        "p99 ≤ 1.5× one-instance p99".to_owned(),
        format!("p99 {p99:.2} / {single_p99:.2} ms = {ratio:.2}×"),
        ratio <= 1.5,
    )])
}

/// `redis-budget`: what checking the chat budget in Redis costs a request:
/// the same budgeted request (`GET /api/v1/chatkit/sessions`) one at a time
/// on an instance without Redis and on one with it, p50 against p50.
///
/// # Errors
/// If a request fails.
pub async fn redis_budget(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    let requests = if options.smoke { 50 } else { 5_000 };
    println!("\n== redis-budget: {requests} budgeted requests one at a time, without Redis and with it");
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let redis = parley_tests::TestRedis::on(&redis_url);
    let shared: Vec<(&str, String)> = redis.settings().into_iter().collect();
    let shared: Vec<(&str, &str)> = shared.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let with_redis = scenarios::serve_in_process(&bench.database.url, &shared).await?;
    let token = register_users(bench, "budget", 1).await?.remove(0);
    let mut p50s = Vec::new();
    for (label, address) in [("local", bench.address.clone()), ("redis", with_redis)] {
        let mut latency = load::histogram()?;
        let url = format!("{address}/api/v1/chatkit/sessions");
        for _ in 0..requests {
            let started = Instant::now();
            let response = bench.client.get(&url).bearer_auth(&token).send().await?;
            anyhow::ensure!(response.status().is_success(), "{label}: {}", response.status());
            response.bytes().await?;
            latency.saturating_record(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX).max(1));
        }
        let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
        println!("  {label:<10} p50 {:.3} ms, p99 {:.3} ms", ms(0.5), ms(0.99));
        p50s.push(ms(0.5));
    }
    let added = p50s[1] - p50s[0];
    Ok(vec![scenarios::verdict(
        "redis-budget",
        "the Redis budget adds ≤ 0.5 ms p50".to_owned(),
        format!("p50 {:.3} − {:.3} ms = {added:.3} ms", p50s[1], p50s[0]),
        added <= 0.5,
    )])
}

// ------------------------------------------------------------------- idle --

/// The resident set of `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .context("no VmRSS line")
}

pub(crate) fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// MB (10^6 bytes) from KiB.
fn mb(kib: u64) -> f64 {
    kib as f64 * 1024.0 / 1e6
}

/// The release `parley` running as a child process, as `startup` spawns it:
/// a clean environment, the bench database, a free port.
pub(crate) struct Spawned {
    child: tokio::process::Child,
    pub(crate) pid: u32,
    pub(crate) address: String,
}

impl Spawned {
    pub(crate) async fn start(options: &Options, database_url: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = scenarios::parley_command(options, database_url, port);
        let child = command.spawn().with_context(|| format!("spawning {}", options.parley_bin.display()))?;
        let pid = child.id().context("the child has no pid")?;
        let mut spawned = Self { child, pid, address: format!("http://127.0.0.1:{port}") };
        spawned.healthy().await?;
        Ok(spawned)
    }

    /// Waits for a 200 from `/health`.
    async fn healthy(&mut self) -> anyhow::Result<()> {
        let probe = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let started = Instant::now();
        loop {
            if let Ok(response) = probe.get(format!("{}/health", self.address)).send().await
                && response.status().as_u16() == 200
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(15) {
                anyhow::bail!("parley did not answer /health within 15 s");
            }
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("parley exited with {status} before it was healthy");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn rss(&self) -> anyhow::Result<u64> {
        rss_kib(self.pid)
    }

    /// Samples the RSS every [`RSS_SAMPLE_EVERY`] into `peak` until aborted.
    fn sample_peak(&self, peak: Arc<AtomicU64>) -> JoinHandle<()> {
        let pid = self.pid;
        tokio::spawn(async move {
            loop {
                if let Ok(kib) = rss_kib(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(RSS_SAMPLE_EVERY).await;
            }
        })
    }

    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        self.child.kill().await.context("stopping parley")
    }
}

/// Keeps reading an idle connection (tungstenite answers pings) until `stop`;
/// counts it in `dropped` if the server ends it first.
async fn idle_reader(mut socket: Socket, mut stop: watch::Receiver<bool>, dropped: Arc<AtomicUsize>) {
    loop {
        tokio::select! {
            frame = socket.next() => match frame {
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            },
            _ = stop.changed() => {
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
                return;
            }
        }
    }
}

/// Where the idle connections go: connection `i` joins session `i / 50` as user `i % users`.
struct IdlePlan {
    address: String,
    sessions: Vec<String>,
    tokens: Vec<String>,
    connections: usize,
}

/// Opens and joins every idle connection, a bounded number at a time; each is read from then on.
async fn open_idle(
    plan: &IdlePlan,
    stop: &watch::Receiver<bool>,
    dropped: &Arc<AtomicUsize>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    futures_util::stream::iter(0..plan.connections)
        .map(|index| {
            let url = room_url(&plan.address, &plan.sessions[index / ROOM_USERS]);
            let token = plan.tokens[index % plan.tokens.len()].clone();
            let (stop, dropped) = (stop.clone(), Arc::clone(dropped));
            async move {
                let socket = open_joined(&url, &token).await.with_context(|| format!("idle connection {index}"))?;
                Ok::<_, anyhow::Error>(tokio::spawn(idle_reader(socket, stop, dropped)))
            }
        })
        .buffer_unordered(IDLE_CONNECT_CONCURRENCY)
        .try_collect()
        .await
}

/// Users and sessions for `connections` idle connections: rooms of 50 distinct users.
async fn idle_plan(bench: &Bench, options: &Options, connections: usize) -> anyhow::Result<IdlePlan> {
    let users = if options.smoke { 5 } else { ROOM_USERS };
    let tokens = register_users(bench, "sitter", users).await?;
    let host = tokens.first().context("no users")?;
    let mut sessions = Vec::new();
    for room in 0..connections.div_ceil(ROOM_USERS) {
        sessions.push(create_session(bench, host, &format!("Quiet room {room}"), ROOM_USERS).await?);
    }
    Ok(IdlePlan { address: String::new(), sessions, tokens, connections })
}

/// The RSS readings of the idle scenario, KiB.
struct IdleRss {
    before: u64,
    joined: u64,
    idle: u64,
    peak: u64,
}

/// The RSS right after the last join and after [`IDLE_PAUSE`] idle.
async fn idle_readings(server: &Spawned) -> anyhow::Result<(u64, u64)> {
    let joined = server.rss()?;
    tokio::time::sleep(IDLE_PAUSE).await;
    Ok((joined, server.rss()?))
}

/// Joins every connection of `plan` to `server`, idles, and reads the server's RSS throughout.
async fn hold_idle(server: &Spawned, plan: &IdlePlan) -> anyhow::Result<(IdleRss, Duration, usize)> {
    let before = server.rss()?;
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = server.sample_peak(Arc::clone(&peak));
    let (stop, stopped) = watch::channel(false);
    let dropped = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let opened = open_idle(plan, &stopped, &dropped).await;
    let joined_in = started.elapsed();
    let readings = match &opened {
        Ok(_) => idle_readings(server).await,
        Err(_) => Ok((0, 0)),
    };
    let gone = dropped.load(Ordering::Relaxed);
    let _ = stop.send(true);
    sampler.abort();
    for reader in opened? {
        let _ = reader.await;
    }
    let (joined, idle) = readings?;
    let peak = peak.load(Ordering::Relaxed).max(joined).max(idle);
    Ok((IdleRss { before, joined, idle, peak }, joined_in, gone))
}

/// `ws-idle`: see the module documentation.
///
/// # Errors
/// If the server cannot start, a connection cannot be opened or joined, or the server drops one.
pub async fn idle(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    let connections = if options.smoke { 50 } else { 10_000 };
    println!(
        "\n== ws-idle: {connections} joined WebSocket connections to a spawned {}; its RSS",
        options.parley_bin.display()
    );
    if !options.parley_bin.is_file() {
        println!("  skipped: {} does not exist (cargo build --release -p parley-server)", options.parley_bin.display());
        return Ok(Vec::new());
    }
    let started = Instant::now();
    let mut plan = idle_plan(bench, options, connections).await?;
    let server = Spawned::start(options, &bench.database.url).await?;
    plan.address.clone_from(&server.address);
    println!(
        "  {:<10} {} users, {} sessions of up to {ROOM_USERS} users, parley pid {} healthy, in {:.1} s",
        "setup",
        plan.tokens.len(),
        plan.sessions.len(),
        server.pid,
        started.elapsed().as_secs_f64()
    );
    let held = hold_idle(&server, &plan).await;
    server.stop().await?;
    let (rss, joined_in, dropped) = held?;
    report_idle(&rss, connections, joined_in, dropped)?;
    Ok(vec![scenarios::verdict(
        "ws-idle",
        format!("server RSS ≤ {RSS_TARGET_MB:.0} MB with {connections} idle connections"),
        format!("peak {:.1} MiB = {:.1} MB", mib(rss.peak), mb(rss.peak)),
        mb(rss.peak) <= RSS_TARGET_MB,
    )])
}

/// Prints the idle readings; fails if the server dropped a connection (the RSS would be of fewer).
fn report_idle(rss: &IdleRss, connections: usize, joined_in: Duration, dropped: usize) -> anyhow::Result<()> {
    println!(
        "  {:<10} before {:.1} MiB; {connections} joined in {:.1} s: {:.1} MiB; after {} s idle: {:.1} MiB; \
         peak {:.1} MiB ({:.1} MB)",
        "rss",
        mib(rss.before),
        joined_in.as_secs_f64(),
        mib(rss.joined),
        IDLE_PAUSE.as_secs(),
        mib(rss.idle),
        mib(rss.peak),
        mb(rss.peak)
    );
    let per_connection = rss.joined.saturating_sub(rss.before) as f64 / connections as f64;
    println!("  {:<10} {per_connection:.1} KiB per connection ((joined − before) / {connections})", "memory");
    println!("  {:<10} {dropped} of {connections} connections closed by the server while idle", "idle");
    if dropped > 0 {
        anyhow::bail!("ws-idle: the server closed {dropped} of {connections} idle connections");
    }
    Ok(())
}
