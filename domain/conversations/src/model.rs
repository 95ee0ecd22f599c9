//! The language model port: a streaming chat model that may request tools.

use async_trait::async_trait;
use futures_util::stream::BoxStream;

/// A tool the model may call: name, description and JSON-schema parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    pub parameters: serde_json::Value,
}

/// A tool call the model asked for, fully assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolRequest {
    pub id: String,
    pub name: String,
    /// JSON text, exactly as the model produced it (it may be invalid JSON).
    pub arguments: String,
}

/// One turn of the history sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatTurn {
    System(String),
    User(String),
    Assistant {
        content: String,
        tool_calls: Vec<ToolRequest>,
    },
    /// The result of the tool call `call_id`, as JSON text.
    Tool {
        call_id: String,
        content: String,
    },
}

/// What the model produces while it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelEvent {
    /// More of the reply's text, as soon as it is produced.
    TextDelta(String),
    /// A complete tool call; the turn's tool calls arrive before the stream ends.
    ToolCall(ToolRequest),
}

/// Why the model could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The provider refused or failed (connection, HTTP error status).
    #[error("language model unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request with HTTP 429; `retry_after` is its
    /// `Retry-After`, when it gave one.
    #[error("language model provider rate limited the request")]
    RateLimited { retry_after: Option<std::time::Duration> },
    /// No answer within the configured time.
    #[error("language model timed out")]
    Timeout,
    /// The provider answered something that is not a valid completion.
    #[error("language model sent a bad response: {0}")]
    BadResponse(String),
}

/// The events of one model turn; the stream ends when the turn is complete.
pub type ModelStream = BoxStream<'static, Result<ModelEvent, ModelError>>;

/// A chat model that streams its reply and may ask for tool calls.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait LanguageModel: Send + Sync {
    /// Starts one turn over `history` with `tools` available. The history is
    /// borrowed: the caller extends it for the next round.
    ///
    /// # Errors
    /// `ModelError` if the turn cannot start; failures after the start arrive
    /// as an `Err` item of the stream, which then ends.
    async fn stream(&self, history: &[ChatTurn], tools: Vec<ToolSpec>) -> Result<ModelStream, ModelError>;
}
