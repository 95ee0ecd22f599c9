//! `OpenAiLanguageModel`: a streaming client for the OpenAI-compatible Chat
//! Completions API (OpenRouter, OpenAI, Ollama, vLLM, llama.cpp).
//!
//! The wire types are our own and lenient on purpose: streamed chunks may omit
//! `id`, `object`, `created` or `model`, and `null` is accepted wherever a
//! field is optional.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::stream::{self, BoxStream, StreamExt};
use parley_conversations::{ChatTurn, LanguageModel, ModelError, ModelEvent, ModelStream, ToolRequest, ToolSpec};
use reqwest::{StatusCode, Url, header};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// How long to wait before the single retry.
const RETRY_DELAY: Duration = Duration::from_millis(250);

/// The longest `Retry-After` of a 429 still worth waiting for before the
/// single retry; a longer one fails the turn at once.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The `provider` label of this adapter's metrics.
const PROVIDER: &str = "openai_compatible";

/// How long a finished turn's connection is read, off the reply's path, for
/// the usage chunk that follows the `finish_reason`.
const USAGE_WAIT: Duration = Duration::from_secs(5);

/// A bound on one streamed tool call's arguments, far above the assistant's
/// own cap, so that a runaway provider cannot fill memory before the turn ends.
const MAX_ASSEMBLED_ARGUMENTS: usize = 64 * 1024;

/// Settings of an OpenAI-compatible provider.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL up to (not including) `/chat/completions`, e.g. `https://openrouter.ai/api/v1`.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set; never logged.
    pub api_key: Option<SecretString>,
    /// The `model` field of every request.
    pub model: String,
    /// Bounds the wait for the response headers and every gap between body chunks.
    pub timeout: Duration,
    /// The `max_tokens` field of every request.
    pub max_tokens: u32,
}

/// A [`LanguageModel`] speaking the OpenAI-compatible Chat Completions API
/// with `stream: true`.
///
/// Text deltas are forwarded as they arrive; tool-call fragments are assembled
/// by `index` and emitted, complete, when the turn finishes. A request that
/// fails with HTTP 429, a 5xx status or a connection error before any chunk
/// arrived is retried exactly once.
#[derive(Debug, Clone)]
pub struct OpenAiLanguageModel {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    endpoint: Url,
    api_key: Option<SecretString>,
    model: String,
    timeout: Duration,
    max_tokens: u32,
}

impl OpenAiLanguageModel {
    /// Builds the client.
    ///
    /// # Errors
    /// `ModelError::Unavailable` if `base_url` is not an `http(s)` URL or the
    /// HTTP client cannot be built.
    pub fn new(config: OpenAiConfig) -> Result<Self, ModelError> {
        let endpoint = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        let endpoint =
            Url::parse(&endpoint).map_err(|_| ModelError::Unavailable("invalid language model base URL".to_owned()))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(ModelError::Unavailable("language model base URL must be http or https".to_owned()));
        }
        // reqwest is built without a crypto provider of its own (ring compiles
        // in a fraction of aws-lc's time); the first client installs ring for
        // the process. An error means one is installed already, which serves.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A redirect could carry the request, key included, to another host.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.timeout)
            .build()
            .map_err(|e| ModelError::Unavailable(format!("cannot build HTTP client: {}", e.without_url())))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                endpoint,
                api_key: config.api_key,
                model: config.model,
                timeout: config.timeout,
                max_tokens: config.max_tokens,
            }),
        })
    }
}

#[async_trait]
impl LanguageModel for OpenAiLanguageModel {
    async fn stream(&self, history: &[ChatTurn], tools: Vec<ToolSpec>) -> Result<ModelStream, ModelError> {
        let request = ChatRequest {
            model: &self.inner.model,
            stream: true,
            max_tokens: self.inner.max_tokens,
            stream_options: StreamOptions { include_usage: true },
            messages: history.iter().map(WireMessage::from).collect(),
            tools: tools.iter().map(WireTool::from).collect(),
        };
        let body = serde_json::to_vec(&request)
            .map_err(|e| ModelError::BadResponse(format!("cannot encode the request: {e}")))?;
        tracing::debug!(
            model = %self.inner.model,
            messages = history.len(),
            tools = tools.len(),
            "starting language model turn"
        );
        let mut turn = Turn {
            inner: Arc::clone(&self.inner),
            body: Arc::new(body),
            retry_left: true,
            events: None,
            tool_calls: ToolCallAssembler::default(),
            pending: VecDeque::new(),
            chunk_seen: false,
            usage_seen: false,
            done: false,
        };
        turn.connect().await?;
        Ok(stream::unfold(turn, |mut turn| async move {
            let item = turn.next_item().await?;
            Some((item, turn))
        })
        .boxed())
    }
}

// ---------------------------------------------------------------------------
// One turn: connection, retry and chunk parsing.

type SseStream = BoxStream<'static, Result<Event, EventStreamError<BodyError>>>;

/// A failure while reading the response body.
#[derive(Debug)]
enum BodyError {
    /// No chunk within the timeout.
    Stalled,
    /// The connection broke.
    Transport(String),
}

/// A failed attempt, and how long to wait before retrying it (`None`: do not).
struct AttemptError {
    error: ModelError,
    retry_after: Option<Duration>,
}

struct Turn {
    inner: Arc<Inner>,
    body: Arc<Vec<u8>>,
    retry_left: bool,
    events: Option<SseStream>,
    tool_calls: ToolCallAssembler,
    pending: VecDeque<Result<ModelEvent, ModelError>>,
    /// Whether any chunk of the completion arrived (no retry after that).
    chunk_seen: bool,
    /// Whether the usage chunk arrived (no need to read on for it).
    usage_seen: bool,
    done: bool,
}

impl Turn {
    /// Sends the request until it gets a 2xx answer, retrying once.
    async fn connect(&mut self) -> Result<(), ModelError> {
        loop {
            match attempt(&self.inner, &self.body).await {
                Ok(events) => {
                    self.events = Some(events);
                    return Ok(());
                }
                Err(AttemptError { error, retry_after }) => {
                    if let Some(wait) = retry_after.filter(|_| self.retry_left) {
                        self.retry_left = false;
                        tracing::warn!(error = %error, "language model request failed; retrying once");
                        tokio::time::sleep(wait).await;
                    } else {
                        tracing::warn!(error = %error, "language model request failed");
                        return Err(error);
                    }
                }
            }
        }
    }

    /// The next item of the model stream, or `None` when the turn is over.
    async fn next_item(&mut self) -> Option<Result<ModelEvent, ModelError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            let next = match self.events.as_mut() {
                Some(events) => events.next().await,
                None => None,
            };
            match next {
                // A finish_reason or [DONE] ends the turn before the body does.
                None => {
                    self.fail(ModelError::BadResponse("the stream ended before the completion finished".to_owned()))
                }
                Some(Ok(event)) => self.on_event(&event),
                Some(Err(error)) => {
                    let error = match error {
                        EventStreamError::Transport(BodyError::Stalled) => ModelError::Timeout,
                        EventStreamError::Transport(BodyError::Transport(message)) => {
                            if !self.chunk_seen && self.retry_left {
                                tracing::warn!("language model connection lost before any chunk; retrying once");
                                self.events = None;
                                match self.connect().await {
                                    Ok(()) => continue,
                                    Err(error) => error,
                                }
                            } else {
                                ModelError::Unavailable(format!("connection lost: {message}"))
                            }
                        }
                        EventStreamError::Utf8(_) => ModelError::BadResponse("stream is not valid UTF-8".to_owned()),
                        EventStreamError::Parser(_) => ModelError::BadResponse("malformed event stream".to_owned()),
                    };
                    self.fail(error);
                }
            }
        }
    }

    fn on_event(&mut self, event: &Event) {
        let data = event.data.trim();
        if data.is_empty() {
            return;
        }
        if data == "[DONE]" {
            self.events = None;
            self.finish();
            return;
        }
        self.chunk_seen = true;
        let chunk: Chunk = match serde_json::from_str(data) {
            Ok(chunk) => chunk,
            Err(e) => {
                self.fail(ModelError::BadResponse(format!("malformed chunk: {e}")));
                return;
            }
        };
        if let Some(error) = chunk.error {
            let detail = error.code.map_or_else(String::new, |code| format!(" ({code})"));
            self.fail(ModelError::Unavailable(format!("provider reported an error{detail}")));
            return;
        }
        if let Some(usage) = &chunk.usage {
            usage.record();
            self.usage_seen = true;
        }
        let mut finished = false;
        for choice in chunk.choices.unwrap_or_default() {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content
                    && !text.is_empty()
                {
                    self.pending.push_back(Ok(ModelEvent::TextDelta(text)));
                }
                for fragment in delta.tool_calls.unwrap_or_default() {
                    if let Err(error) = self.tool_calls.push(fragment) {
                        self.fail(error);
                        return;
                    }
                }
            }
            if choice.finish_reason.is_some_and(|reason| !reason.is_empty()) {
                finished = true;
            }
        }
        if finished {
            self.finish();
        }
    }

    /// Ends the turn normally: emits the assembled tool calls.
    fn finish(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        // The usage chunk follows the finish_reason: read it off the reply's path.
        if let Some(events) = self.events.take()
            && !self.usage_seen
        {
            tokio::spawn(read_usage(events));
        }
        match std::mem::take(&mut self.tool_calls).finish() {
            Ok(calls) => self.pending.extend(calls.into_iter().map(|call| Ok(ModelEvent::ToolCall(call)))),
            Err(error) => self.pending.push_back(Err(error)),
        }
    }

    /// Ends the turn with an error (after the text already queued).
    fn fail(&mut self, error: ModelError) {
        tracing::warn!(error = %error, "language model stream failed");
        self.done = true;
        self.events = None;
        self.pending.push_back(Err(error));
    }
}

/// Sends the request once; `Turn` is not `Sync`, so this borrows only its parts.
async fn attempt(inner: &Inner, body: &[u8]) -> Result<SseStream, AttemptError> {
    let mut request = inner
        .client
        .post(inner.endpoint.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "text/event-stream")
        .body(body.to_vec());
    if let Some(key) = &inner.api_key {
        request = request.bearer_auth(key.expose_secret());
    }
    let response = match tokio::time::timeout(inner.timeout, request.send()).await {
        Err(_) => {
            return Err(AttemptError { error: ModelError::Timeout, retry_after: None });
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Err(AttemptError { error: ModelError::Timeout, retry_after: None });
        }
        Ok(Err(e)) => {
            let retryable = e.is_connect() || e.is_request();
            return Err(AttemptError {
                error: ModelError::Unavailable(format!("cannot reach the provider: {}", e.without_url())),
                retry_after: retryable.then_some(RETRY_DELAY),
            });
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let retry_after = retry_after(response.headers());
        tracing::warn!(
            retry_after_seconds = retry_after.map(|wait| wait.as_secs()),
            "language model provider rate limited the request (429)"
        );
        return Err(AttemptError {
            error: ModelError::RateLimited { retry_after },
            retry_after: match retry_after {
                None => Some(RETRY_DELAY),
                Some(wait) if wait <= MAX_RETRY_AFTER => Some(wait.max(RETRY_DELAY)),
                Some(_) => None,
            },
        });
    }
    if !status.is_success() {
        return Err(AttemptError {
            error: ModelError::Unavailable(format!("status {}", status.as_u16())),
            retry_after: status.is_server_error().then_some(RETRY_DELAY),
        });
    }
    Ok(timed_body(response, inner.timeout).eventsource().boxed())
}

/// `Retry-After` in seconds (the HTTP-date form is rare from model providers
/// and counts as absent).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The response body as a byte stream whose every gap is bounded by `timeout`.
fn timed_body(
    response: reqwest::Response,
    timeout: Duration,
) -> impl futures_util::Stream<Item = Result<impl AsRef<[u8]>, BodyError>> + Send + 'static {
    stream::unfold(Some(response.bytes_stream().boxed()), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(timeout, body.next()).await {
            Err(_) => Some((Err(BodyError::Stalled), None)),
            Ok(None) => None,
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(body))),
            Ok(Some(Err(e))) => Some((Err(BodyError::Transport(e.without_url().to_string())), None)),
        }
    })
}

// ---------------------------------------------------------------------------
// Tool-call assembly.

#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

/// Assembles streamed tool-call fragments by `index`.
#[derive(Debug, Default)]
struct ToolCallAssembler {
    calls: BTreeMap<u32, PartialCall>,
    last_index: Option<u32>,
}

impl ToolCallAssembler {
    /// # Errors
    /// `BadResponse` once a call's arguments pass [`MAX_ASSEMBLED_ARGUMENTS`].
    fn push(&mut self, fragment: ToolCallDelta) -> Result<(), ModelError> {
        // Servers that omit `index` start a new call with each new `id`.
        let index = fragment.index.unwrap_or_else(|| match (self.last_index, &fragment.id) {
            (Some(last), None) => last,
            (Some(last), Some(id)) if self.calls.get(&last).and_then(|c| c.id.as_ref()) == Some(id) => last,
            _ => self.calls.keys().next_back().map_or(0, |last| last + 1),
        });
        self.last_index = Some(index);
        let call = self.calls.entry(index).or_default();
        if let Some(id) = fragment.id.filter(|id| !id.is_empty())
            && call.id.is_none()
        {
            call.id = Some(id);
        }
        if let Some(function) = fragment.function {
            // The name arrives whole; some servers repeat it in later fragments.
            if let Some(name) = function.name.filter(|name| !name.is_empty())
                && call.name.is_empty()
            {
                call.name = name;
            }
            if let Some(arguments) = function.arguments {
                if call.arguments.len() + arguments.len() > MAX_ASSEMBLED_ARGUMENTS {
                    return Err(ModelError::BadResponse("tool call arguments too long".to_owned()));
                }
                call.arguments.push_str(&arguments);
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<Vec<ToolRequest>, ModelError> {
        self.calls
            .into_values()
            .map(|call| {
                if call.name.is_empty() {
                    return Err(ModelError::BadResponse("tool call without a function name".to_owned()));
                }
                Ok(ToolRequest {
                    id: call.id.unwrap_or_else(|| format!("call_{}", uuid::Uuid::new_v4().simple())),
                    name: call.name,
                    arguments: call.arguments,
                })
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Wire types: request.

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    stream: bool,
    max_tokens: u32,
    /// Asks for a last chunk with the turn's token usage.
    stream_options: StreamOptions,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        /// `null` when the assistant only called tools.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

impl<'a> From<&'a ChatTurn> for WireMessage<'a> {
    fn from(turn: &'a ChatTurn) -> Self {
        match turn {
            ChatTurn::System(content) => Self::System { content },
            ChatTurn::User(content) => Self::User { content },
            ChatTurn::Assistant { content, tool_calls } => Self::Assistant {
                content: (!content.is_empty() || tool_calls.is_empty()).then_some(content.as_str()),
                tool_calls: tool_calls
                    .iter()
                    .map(|call| WireToolCall {
                        id: &call.id,
                        kind: "function",
                        function: WireFunctionCall { name: &call.name, arguments: replayable(&call.arguments) },
                    })
                    .collect(),
            },
            ChatTurn::Tool { call_id, content } => Self::Tool { tool_call_id: call_id, content },
        }
    }
}

/// Arguments as sent back in the history. Some servers parse them and refuse
/// the whole request when they are not JSON; the model already got an error
/// result for such a call, so an empty object stands in for them.
fn replayable(arguments: &str) -> &str {
    if serde_json::from_str::<serde::de::IgnoredAny>(arguments).is_ok() { arguments } else { "{}" }
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

impl<'a> From<&'a ToolSpec> for WireTool<'a> {
    fn from(spec: &'a ToolSpec) -> Self {
        Self {
            kind: "function",
            function: WireFunction { name: spec.name, description: spec.description, parameters: &spec.parameters },
        }
    }
}

// ---------------------------------------------------------------------------
// Wire types: streamed chunks (lenient).

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    error: Option<ChunkError>,
    /// The turn's token counts: in the last chunk (`include_usage`), which
    /// comes after the one with the `finish_reason`.
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
}

impl Usage {
    /// Counts the tokens in `model_tokens_total`.
    fn record(&self) {
        for (kind, tokens) in [("prompt", self.prompt_tokens), ("completion", self.completion_tokens)] {
            if let Some(tokens) = tokens {
                metrics::counter!("model_tokens_total", "provider" => PROVIDER, "kind" => kind).increment(tokens);
            }
        }
    }
}

/// Reads what follows a finished turn for its usage chunk, up to `[DONE]`,
/// the end of the body or `USAGE_WAIT`, whichever comes first.
async fn read_usage(mut events: SseStream) {
    let _ = tokio::time::timeout(USAGE_WAIT, async move {
        while let Some(Ok(event)) = events.next().await {
            let data = event.data.trim();
            if data == "[DONE]" {
                return;
            }
            if let Ok(Chunk { usage: Some(usage), .. }) = serde_json::from_str::<Chunk>(data) {
                usage.record();
                return;
            }
        }
    })
    .await;
}

#[derive(Deserialize)]
struct ChunkError {
    #[serde(default)]
    code: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    impl ToolCallAssembler {
        fn push_ok(&mut self, fragment: ToolCallDelta) {
            self.push(fragment).unwrap();
        }
    }

    #[test]
    fn assembler_refuses_runaway_arguments() {
        let mut assembler = ToolCallAssembler::default();
        let chunk = "x".repeat(1024);
        let mut outcome = Ok(());
        for _ in 0..=MAX_ASSEMBLED_ARGUMENTS / 1024 {
            outcome = assembler.push(fragment(Some(0), Some("a"), Some("add_task"), Some(&chunk)));
        }
        assert!(matches!(outcome, Err(ModelError::BadResponse(_))));
    }

    #[test]
    fn arguments_that_are_not_json_are_replayed_as_an_empty_object() {
        let turn = ChatTurn::Assistant {
            content: String::new(),
            tool_calls: vec![ToolRequest { id: "c1".into(), name: "add_task".into(), arguments: "{\"ti".into() }],
        };
        let json = serde_json::to_value(WireMessage::from(&turn)).unwrap();
        assert_eq!(json["tool_calls"][0]["function"]["arguments"], serde_json::json!("{}"));
    }

    fn fragment(index: Option<u32>, id: Option<&str>, name: Option<&str>, args: Option<&str>) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            function: Some(FunctionDelta { name: name.map(str::to_owned), arguments: args.map(str::to_owned) }),
        }
    }

    #[test]
    fn assembler_joins_fragments_by_index_and_ignores_repeated_names() {
        let mut assembler = ToolCallAssembler::default();
        assembler.push_ok(fragment(Some(0), Some("a"), Some("add_task"), Some("{\"ti")));
        assembler.push_ok(fragment(Some(1), Some("b"), Some("list_tasks"), Some("")));
        assembler.push_ok(fragment(Some(0), None, Some("add_task"), Some("tle\":\"x\"}")));
        assembler.push_ok(fragment(Some(1), None, None, Some("{}")));
        let calls = assembler.finish().unwrap();
        assert_eq!(
            calls,
            vec![
                ToolRequest { id: "a".into(), name: "add_task".into(), arguments: "{\"title\":\"x\"}".into() },
                ToolRequest { id: "b".into(), name: "list_tasks".into(), arguments: "{}".into() },
            ]
        );
    }

    #[test]
    fn assembler_without_index_starts_a_call_per_id() {
        let mut assembler = ToolCallAssembler::default();
        assembler.push_ok(fragment(None, Some("a"), Some("x"), Some("1")));
        assembler.push_ok(fragment(None, None, None, Some("2")));
        assembler.push_ok(fragment(None, Some("b"), Some("y"), Some("3")));
        let calls = assembler.finish().unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, "12");
        assert_eq!(calls[1].name, "y");
    }

    #[test]
    fn assembler_rejects_a_nameless_call_and_invents_missing_ids() {
        let mut assembler = ToolCallAssembler::default();
        assembler.push_ok(fragment(Some(0), None, None, Some("{}")));
        assert!(matches!(assembler.finish(), Err(ModelError::BadResponse(_))));

        let mut assembler = ToolCallAssembler::default();
        assembler.push_ok(fragment(Some(0), None, Some("list_tasks"), Some("{}")));
        let calls = assembler.finish().unwrap();
        assert!(calls[0].id.starts_with("call_"));
    }

    #[test]
    fn assistant_turn_with_only_tool_calls_has_null_content() {
        let turn = ChatTurn::Assistant {
            content: String::new(),
            tool_calls: vec![ToolRequest { id: "c1".into(), name: "list_tasks".into(), arguments: "{}".into() }],
        };
        let json = serde_json::to_value(WireMessage::from(&turn)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "list_tasks", "arguments": "{}"}}
            ]})
        );
        let tool = ChatTurn::Tool { call_id: "c1".into(), content: "{}".into() };
        assert_eq!(
            serde_json::to_value(WireMessage::from(&tool)).unwrap(),
            serde_json::json!({"role": "tool", "tool_call_id": "c1", "content": "{}"})
        );
    }

    #[test]
    fn new_rejects_a_base_url_that_is_not_http() {
        let config = OpenAiConfig {
            base_url: "ftp://example.com".into(),
            api_key: None,
            model: "m".into(),
            timeout: Duration::from_secs(1),
            max_tokens: 16,
        };
        assert!(matches!(OpenAiLanguageModel::new(config), Err(ModelError::Unavailable(_))));
    }
}
