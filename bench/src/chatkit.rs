//! ChatKit SSE first token: the time from sending a ChatKit message to the
//! first `assistant.delta` event (REST wrapper) and to the first
//! `assistant_message.content_part.text_delta` event (the ChatKit server
//! protocol, `POST /api/v1/chatkit`), against the same fake OpenAI-compatible
//! model called directly (time to its first content chunk).
//!
//! One client loop (concurrency 1) alternates the three kinds of request, one
//! baseline, one REST and one protocol message per round (the order rotates),
//! so all sides see the same machine at the same moment. The conversations
//! (one per Parley door) restart every [`SESSION_MESSAGES`] messages, so the
//! history sent to the model stays bounded and is the same size on every side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use poem::web::Json;
use poem::{Body, Request, Response};
use serde_json::{Value, json};

use crate::Options;
use crate::load::{self, Stats};
use crate::scenarios::{self, Bench, Verdict};

/// The `model` both sides ask for.
const MODEL: &str = "parley-bench-fake";
/// The API key the fake model expects, as Parley's `LLM_API_KEY`.
const API_KEY: &str = "bench";
/// The user's message on both sides.
const TEXT: &str = "Say hello to the benchmark";
/// The fake model's reply, one chunk each.
const REPLY: [&str; 4] = ["Hello", ", ", "world", "!"];
/// A fresh ChatKit session (and baseline history) after this many messages.
const SESSION_MESSAGES: usize = 20;
/// Messages per side in a smoke run.
const SMOKE_MESSAGES: usize = 5;
/// Parley's system prompt (`application/src/assistant.rs`), so the baseline body is the same size.
const SYSTEM_PROMPT: &str = "You are Parley, a concise assistant that manages the user's to-do list. \
Use the tools to add, list, complete, update and delete tasks; look tasks up with list_tasks \
when you need an id. Answer in one or two short sentences.";

/// Runs the scenario: a fake model, a Parley using it, and the alternating client loop.
///
/// # Errors
/// If a server cannot start or a request of either side fails.
pub async fn first_token(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    println!(
        "\n== chatkit: first assistant.delta of POST /api/v1/chatkit/sessions/{{id}}/messages and first text_delta of \
         POST /api/v1/chatkit, vs the same fake model called directly (1 connection each, alternating; a new \
         session every {SESSION_MESSAGES} messages)"
    );
    let model_url = fake_model().await?;
    let parley = scenarios::serve_in_process(
        &bench.database.url,
        &[
            ("LLM_BASE_URL", model_url.as_str()),
            ("LLM_API_KEY", API_KEY),
            ("LLM_MODEL", MODEL),
            ("RATE_LIMIT_PER_MINUTE", "1000000"),
        ],
    )
    .await?;
    let (_user, token) = bench.register("chatkit").await?;
    let sides = Sides { client: scenarios::client(2)?, model_url, parley, token };
    let sides = Arc::new(sides);
    let (warmup, limit) = if options.smoke { (Duration::ZERO, Some(SMOKE_MESSAGES)) } else { (options.warmup, None) };
    if !warmup.is_zero() {
        measure(&sides, warmup, None).await?;
    }
    let (baseline, parley, protocol) = measure(&sides, options.duration, limit).await?;
    print_side("baseline", "first content chunk from the fake model", &baseline);
    print_side("parley", "first assistant.delta event", &parley);
    print_side("protocol", "first text_delta event", &protocol);
    scenarios::no_errors("chatkit baseline", &baseline.first)?;
    scenarios::no_errors("chatkit", &parley.first)?;
    scenarios::no_errors("chatkit protocol", &protocol.first)?;
    let mut verdicts = verdicts(&baseline.first, &parley.first);
    verdicts.extend(protocol_verdicts(&baseline.first, &protocol.first));
    Ok(verdicts)
}

/// The ChatKit server protocol's added-latency verdicts (issue targets).
fn protocol_verdicts(baseline: &Stats, protocol: &Stats) -> Vec<Verdict> {
    let added = |quantile: f64| protocol.ms(quantile) - baseline.ms(quantile);
    let (p50, p99) = (added(0.50), added(0.99));
    vec![
        scenarios::verdict(
            "chatkit",
            "protocol added latency p50 ≤ 1 ms".to_owned(),
            format!("p50 {:.2} − {:.2} ms = {p50:.2} ms", protocol.ms(0.50), baseline.ms(0.50)),
            p50 <= 1.0,
        ),
        scenarios::verdict(
            "chatkit",
            "protocol added latency p99 ≤ 5 ms".to_owned(),
            format!("p99 {:.2} − {:.2} ms = {p99:.2} ms", protocol.ms(0.99), baseline.ms(0.99)),
            p99 <= 5.0,
        ),
    ]
}

/// The two added-latency verdicts: Parley's quantile minus the baseline's.
fn verdicts(baseline: &Stats, parley: &Stats) -> Vec<Verdict> {
    let added = |quantile: f64| parley.ms(quantile) - baseline.ms(quantile);
    let (p50, p99) = (added(0.50), added(0.99));
    vec![
        scenarios::verdict(
            "chatkit",
            "added latency p50 ≤ 2 ms".to_owned(),
            format!("p50 {:.2} − {:.2} ms = {p50:.2} ms", parley.ms(0.50), baseline.ms(0.50)),
            p50 <= 2.0,
        ),
        scenarios::verdict(
            "chatkit",
            "added latency p99 ≤ 10 ms".to_owned(),
            format!("p99 {:.2} − {:.2} ms = {p99:.2} ms", parley.ms(0.99), baseline.ms(0.99)),
            p99 <= 10.0,
        ),
    ]
}

// ---------------------------------------------------------------------------
// The fake OpenAI-compatible model.

/// Starts the fake model on a free port; returns its base URL (`LLM_BASE_URL`).
async fn fake_model() -> anyhow::Result<String> {
    scenarios::on_servers(async {
        // Parley's own listener, for its Nagle-free connections.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let app = Arc::new(poem::Route::new().at("/chat/completions", poem::post(completions)));
        let (drain, draining) = parley_server::shutdown::Drain::new();
        tokio::spawn(async move {
            let limits = parley_server::listener::Limits::new(100_000);
            let _ = parley_server::listener::serve(listener, app, limits, draining, Duration::ZERO).await;
            drop(drain);
        });
        Ok(format!("http://127.0.0.1:{port}"))
    })
    .await?
}

/// `POST /chat/completions`: checks the key and `stream: true`, then streams [`REPLY`].
#[poem::handler]
fn completions(request: &Request, body: Json<Value>) -> Response {
    let authorized = request.header("authorization").and_then(|value| value.strip_prefix("Bearer ")) == Some(API_KEY);
    if !authorized {
        return Response::builder().status(poem::http::StatusCode::UNAUTHORIZED).body("bad API key");
    }
    if body.0["stream"] != json!(true) || !body.0["messages"].is_array() {
        return Response::builder().status(poem::http::StatusCode::BAD_REQUEST).body("expected stream: true");
    }
    Response::builder()
        .content_type("text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_bytes_stream(reply_stream()))
}

/// The reply as SSE frames: a role + "Hello" chunk at once, the other content
/// chunks, a `finish_reason: "stop"` chunk, then `[DONE]`. The stream yields
/// to the runtime between frames, so the server flushes each on its own.
fn reply_stream() -> impl futures_util::Stream<Item = Result<String, std::io::Error>> + Send + 'static {
    let mut frames = Vec::with_capacity(REPLY.len() + 2);
    for (index, text) in REPLY.iter().enumerate() {
        let delta = if index == 0 { json!({"role": "assistant", "content": text}) } else { json!({"content": text}) };
        frames.push(chunk(&delta, None));
    }
    frames.push(chunk(&json!({}), Some("stop")));
    frames.push("data: [DONE]\n\n".to_owned());
    futures_util::stream::iter(frames.into_iter().enumerate()).then(|(index, frame)| async move {
        if index > 0 {
            tokio::task::yield_now().await;
        }
        Ok(frame)
    })
}

/// One `chat.completion.chunk` as an SSE frame.
fn chunk(delta: &Value, finish_reason: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-parley-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    });
    format!("data: {chunk}\n\n")
}

// ---------------------------------------------------------------------------
// The client loop.

/// Where both sides are and how to reach them.
struct Sides {
    client: reqwest::Client,
    /// The fake model's base URL.
    model_url: String,
    /// The Parley using the fake model.
    parley: String,
    token: String,
}

/// What one side measured: the first-token latency (what the targets judge)
/// and the whole stream, until `[DONE]` / the `done` event.
struct Side {
    first: Stats,
    whole: Histogram<u64>,
}

impl Side {
    fn new() -> anyhow::Result<Self> {
        let first =
            Stats { requests: 0, errors: 0, first_error: None, elapsed: Duration::ZERO, latency: load::histogram()? };
        Ok(Self { first, whole: load::histogram()? })
    }

    /// Records one request: its first token and whole-stream times, or its failure.
    fn record(&mut self, outcome: anyhow::Result<(Duration, Duration)>) {
        self.first.requests += 1;
        match outcome {
            Ok((first, whole)) => {
                self.first.latency.saturating_record(micros(first));
                self.whole.saturating_record(micros(whole));
            }
            Err(error) => {
                self.first.errors += 1;
                self.first.first_error.get_or_insert_with(|| format!("{error:#}"));
            }
        }
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// The baseline's side of the conversation: the messages Parley would send the
/// model for the same ChatKit session (system prompt, then user and assistant turns).
struct History {
    messages: Vec<Value>,
}

impl History {
    fn new() -> Self {
        Self { messages: vec![json!({"role": "system", "content": SYSTEM_PROMPT})] }
    }

    /// The request body with the user's next message, shaped as Parley's (`stream`, `tools`).
    fn request(&mut self) -> Value {
        self.messages.push(json!({"role": "user", "content": TEXT}));
        json!({"model": MODEL, "stream": true, "messages": self.messages, "tools": tools()})
    }

    fn answered(&mut self) {
        self.messages.push(json!({"role": "assistant", "content": REPLY.concat()}));
    }
}

/// Parley's tool definitions in the wire shape it sends them.
fn tools() -> Vec<Value> {
    parley_application::tool_specs()
        .into_iter()
        .map(|spec| {
            json!({"type": "function", "function": {
                "name": spec.name, "description": spec.description, "parameters": spec.parameters
            }})
        })
        .collect()
}

/// Runs the alternating loop for `duration` (or `limit` rounds) on a runtime
/// worker, like the other scenarios' load tasks; returns (baseline, parley
/// REST, parley protocol).
async fn measure(sides: &Arc<Sides>, duration: Duration, limit: Option<usize>) -> anyhow::Result<(Side, Side, Side)> {
    let sides = Arc::clone(sides);
    let task = tokio::spawn(async move {
        let (mut baseline, mut parley, mut protocol) = (Side::new()?, Side::new()?, Side::new()?);
        let start = Instant::now();
        let mut round = 0_usize;
        let mut history = History::new();
        let (mut session, mut thread) = (String::new(), String::new());
        while start.elapsed() < duration && limit.is_none_or(|limit| round < limit) {
            if round.is_multiple_of(SESSION_MESSAGES) {
                session = create_session(&sides).await?;
                // A session is a thread: the protocol gets its own, with the same history.
                thread = create_session(&sides).await?;
                history = History::new();
            }
            let body = history.request();
            for side in 0..3 {
                match (round + side) % 3 {
                    0 => baseline.record(model_once(&sides, &body).await),
                    1 => parley.record(parley_once(&sides, &session).await),
                    _ => protocol.record(protocol_once(&sides, &thread).await),
                }
            }
            history.answered();
            round += 1;
        }
        let elapsed = start.elapsed();
        baseline.first.elapsed = elapsed;
        parley.first.elapsed = elapsed;
        protocol.first.elapsed = elapsed;
        Ok::<_, anyhow::Error>((baseline, parley, protocol))
    });
    task.await.context("the chatkit client loop panicked")?
}

/// `POST /api/v1/chatkit/sessions`; returns the new session's id.
async fn create_session(sides: &Sides) -> anyhow::Result<String> {
    let response = sides
        .client
        .post(format!("{}/api/v1/chatkit/sessions", sides.parley))
        .bearer_auth(&sides.token)
        .json(&json!({}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.context("create session: a JSON body")?;
    if status.as_u16() != 201 {
        anyhow::bail!("create session answered {status}: {body}");
    }
    Ok(body["data"]["id"].as_str().context("create session: an id")?.to_owned())
}

/// One request straight to the fake model: (first content chunk, `[DONE]`) after sending.
async fn model_once(sides: &Sides, body: &Value) -> anyhow::Result<(Duration, Duration)> {
    let sent = Instant::now();
    let response = sides
        .client
        .post(format!("{}/chat/completions", sides.model_url))
        .bearer_auth(API_KEY)
        .header("accept", "text/event-stream")
        .json(body)
        .send()
        .await?;
    let status = response.status();
    if status.as_u16() != 200 {
        anyhow::bail!("fake model answered {status}: {}", response.text().await.unwrap_or_default());
    }
    let mut events = response.bytes_stream().eventsource();
    let mut first = None;
    while let Some(event) = events.next().await {
        let event = event.context("fake model: malformed SSE")?;
        if event.data == "[DONE]" {
            let first = first.context("fake model: no content before [DONE]")?;
            return Ok((first, sent.elapsed()));
        }
        let chunk: Value = serde_json::from_str(&event.data).context("fake model: a JSON chunk")?;
        let content = chunk["choices"][0]["delta"]["content"].as_str();
        if first.is_none() && content.is_some_and(|text| !text.is_empty()) {
            first = Some(sent.elapsed());
        }
    }
    anyhow::bail!("fake model: the stream ended without [DONE]")
}

/// One ChatKit message: (first `assistant.delta`, `done`) after sending.
/// A non-200 answer, an `error` event or a stream without `done` is a failure.
async fn parley_once(sides: &Sides, session: &str) -> anyhow::Result<(Duration, Duration)> {
    let sent = Instant::now();
    let response = sides
        .client
        .post(format!("{}/api/v1/chatkit/sessions/{session}/messages", sides.parley))
        .bearer_auth(&sides.token)
        .json(&json!({"text": TEXT}))
        .send()
        .await?;
    let status = response.status();
    if status.as_u16() != 200 {
        anyhow::bail!("chatkit message answered {status}: {}", response.text().await.unwrap_or_default());
    }
    let mut events = response.bytes_stream().eventsource();
    let mut first = None;
    while let Some(event) = events.next().await {
        let event = event.context("chatkit: malformed SSE")?;
        match event.event.as_str() {
            "assistant.delta" => {
                first.get_or_insert_with(|| sent.elapsed());
            }
            "error" => anyhow::bail!("chatkit: error event {}", event.data),
            "done" => {
                let first = first.context("chatkit: done without an assistant.delta")?;
                return Ok((first, sent.elapsed()));
            }
            _ => {}
        }
    }
    anyhow::bail!("chatkit: the stream ended without a done event")
}

/// One ChatKit protocol message (`threads.add_user_message`): (first
/// `text_delta`, end of stream) after sending. A non-200 answer or an
/// `error` event is a failure.
async fn protocol_once(sides: &Sides, thread: &str) -> anyhow::Result<(Duration, Duration)> {
    let sent = Instant::now();
    let input = json!({"content": [{"type": "input_text", "text": TEXT}], "attachments": [], "inference_options": {}});
    let response = sides
        .client
        .post(format!("{}/api/v1/chatkit", sides.parley))
        .bearer_auth(&sides.token)
        .json(&json!({"type": "threads.add_user_message", "params": {"thread_id": thread, "input": input}}))
        .send()
        .await?;
    let status = response.status();
    if status.as_u16() != 200 {
        anyhow::bail!("chatkit protocol answered {status}: {}", response.text().await.unwrap_or_default());
    }
    let mut events = response.bytes_stream().eventsource();
    let mut first = None;
    while let Some(event) = events.next().await {
        let event = event.context("chatkit protocol: malformed SSE")?;
        let event: Value = serde_json::from_str(&event.data).context("chatkit protocol: a JSON event")?;
        match event["type"].as_str() {
            Some("thread.item.updated") if event["update"]["type"] == "assistant_message.content_part.text_delta" => {
                first.get_or_insert_with(|| sent.elapsed());
            }
            Some("error") => anyhow::bail!("chatkit protocol: error event {event}"),
            _ => {}
        }
    }
    let first = first.context("chatkit protocol: the stream ended without a text_delta")?;
    Ok((first, sent.elapsed()))
}

/// Prints one side's first-token distribution and its whole-stream p50/p99.
fn print_side(label: &str, what: &str, side: &Side) {
    let first = &side.first;
    let ms = |histogram: &Histogram<u64>, quantile: f64| histogram.value_at_quantile(quantile) as f64 / 1000.0;
    println!(
        "  {label:<10} {} requests; {what}: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; \
         whole stream p50 {:.2} ms, p99 {:.2} ms{}",
        first.requests,
        first.ms(0.50),
        first.ms(0.90),
        first.ms(0.99),
        first.ms(0.999),
        first.latency.max() as f64 / 1000.0,
        ms(&side.whole, 0.50),
        ms(&side.whole, 0.99),
        first.first_error.as_ref().map_or_else(String::new, |e| format!(", {} errors (first: {e})", first.errors)),
    );
}
