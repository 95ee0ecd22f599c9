//! DTOs and error mapping shared by the chat and ChatKit areas: one stored
//! conversation seen through two shapes.

use parley_application::{AssistantError, ReplyCut};
use parley_conversations::{
    ConversationDetail, ConversationError, ConversationSummary, Message, MessageText, MessageTextError, ModelError,
    ToolCall,
};
use parley_kernel::ConversationId;
use poem::http::StatusCode;
use poem_openapi::Object;
use serde_json::Value;

use crate::api::schema::Nullable;
use crate::envelope::Time;
use crate::error::ApiError;

#[derive(Debug, Clone, Object)]
pub struct FunctionDto {
    pub name: String,
    /// The arguments as JSON text, as the model produced them.
    pub arguments: String,
}

/// A tool call in the OpenAI shape, plus its outcome.
#[derive(Debug, Clone, Object)]
pub struct ToolCallDto {
    pub id: String,
    /// Always `function`.
    #[oai(rename = "type")]
    pub kind: String,
    pub function: FunctionDto,
    /// What the tool returned; `null` when it has none.
    pub result: Nullable<Value>,
    // No doc comments on enum fields: poem-openapi would wrap their `$ref`
    // in `allOf`, which client generators drop.
    pub status: ToolCallStatus,
    /// Whether `POST /tool-calls/{id}/revert` can still undo it: it changed
    /// tasks and was not reverted (a later change to one of them still makes
    /// the revert a `409 REVERT_CONFLICT`).
    pub revertible: bool,
}

/// How a tool call went: `ok`, or `error` (its `result` says why).
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum ToolCallStatus {
    Ok,
    Error,
}

impl From<parley_conversations::ToolStatus> for ToolCallStatus {
    fn from(status: parley_conversations::ToolStatus) -> Self {
        match status {
            parley_conversations::ToolStatus::Ok => Self::Ok,
            parley_conversations::ToolStatus::Error => Self::Error,
        }
    }
}

/// Who wrote a message: `user` or `assistant`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
}

impl From<parley_conversations::Role> for MessageRole {
    fn from(role: parley_conversations::Role) -> Self {
        match role {
            parley_conversations::Role::User => Self::User,
            parley_conversations::Role::Assistant => Self::Assistant,
        }
    }
}

impl From<ToolCall> for ToolCallDto {
    fn from(call: ToolCall) -> Self {
        Self {
            revertible: parley_application::changed_tasks(&call),
            id: call.id,
            kind: "function".to_owned(),
            function: FunctionDto { name: call.name, arguments: call.arguments },
            result: Nullable(call.result),
            status: call.status.into(),
        }
    }
}

/// A stored message of a conversation.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct MessageDto {
    pub id: String,
    pub role: MessageRole,
    pub content: String,
    pub tool_calls: Vec<ToolCallDto>,
    pub created_at: Time,
}

impl poem_openapi::types::Example for MessageDto {
    fn example() -> Self {
        Self {
            id: "01936a50-2b3c-7d4e-8f5a-6b7c8d9e0f1a".to_owned(),
            role: MessageRole::Assistant,
            content: "Added \"buy milk\".".to_owned(),
            tool_calls: vec![ToolCallDto {
                id: "call_1".to_owned(),
                kind: "function".to_owned(),
                function: FunctionDto { name: "add_task".to_owned(), arguments: r#"{"title":"buy milk"}"#.to_owned() },
                result: Nullable(Some(serde_json::json!({"status": "ok"}))),
                status: ToolCallStatus::Ok,
                revertible: true,
            }],
            created_at: Time(chrono::DateTime::UNIX_EPOCH),
        }
    }
}

impl From<Message> for MessageDto {
    fn from(message: Message) -> Self {
        Self {
            id: message.id.to_string(),
            role: message.role.into(),
            content: message.content,
            tool_calls: message.tool_calls.into_iter().map(ToolCallDto::from).collect(),
            created_at: message.created_at.into(),
        }
    }
}

#[derive(Debug, Object)]
pub struct ConversationSummaryDto {
    pub id: String,
    pub title: String,
    pub created_at: Time,
    pub updated_at: Time,
    pub message_count: u64,
}

impl From<ConversationSummary> for ConversationSummaryDto {
    fn from(summary: ConversationSummary) -> Self {
        let c = summary.conversation;
        Self {
            id: c.id.to_string(),
            title: c.title.as_str().to_owned(),
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
            message_count: summary.message_count,
        }
    }
}

#[derive(Debug, Object)]
pub struct ConversationDto {
    pub id: String,
    pub title: String,
    pub created_at: Time,
    pub updated_at: Time,
    /// At most the 100 most recent messages, oldest first among them.
    pub messages: Vec<MessageDto>,
    /// Whether older messages exist (page them with `GET /chat/conversations/{id}/messages`).
    pub has_more_messages: bool,
}

impl From<ConversationDetail> for ConversationDto {
    fn from(detail: ConversationDetail) -> Self {
        let c = detail.conversation;
        Self {
            id: c.id.to_string(),
            title: c.title.as_str().to_owned(),
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
            messages: detail.messages.into_iter().map(MessageDto::from).collect(),
            has_more_messages: detail.has_more_messages,
        }
    }
}

/// Which API is asking: the same conversation is a `CONVERSATION` through
/// `/chat` and a `SESSION` through `/chatkit`.
#[derive(Debug, Clone, Copy)]
pub enum Surface {
    Chat,
    ChatKit,
}

impl Surface {
    pub fn not_found(self, id: &str) -> ApiError {
        match self {
            Self::Chat => ApiError::not_found("CONVERSATION_NOT_FOUND", "Conversation", "conversation_id", id),
            Self::ChatKit => ApiError::not_found("SESSION_NOT_FOUND", "Session", "session_id", id),
        }
    }

    /// A malformed id in the path is an unknown one.
    pub fn id(self, raw: &str) -> Result<ConversationId, ApiError> {
        raw.parse().map_err(|_| self.not_found(raw))
    }

    pub fn conversation_error(self, error: ConversationError, id: &str) -> ApiError {
        match error {
            ConversationError::NotFound => self.not_found(id),
            ConversationError::Forbidden => ApiError::forbidden(),
            ConversationError::Store(store) => crate::error::store_error(&store),
        }
    }

    pub fn assistant_error(self, error: AssistantError, id: &str) -> ApiError {
        match error {
            AssistantError::Conversation(e) => self.conversation_error(e, id),
            AssistantError::Model(e) => model_error(&e),
            AssistantError::Cut(cut) => cut_error(cut),
        }
    }
}

pub fn model_error(error: &ModelError) -> ApiError {
    let message = match error {
        ModelError::Timeout => "The language model did not answer in time",
        ModelError::Unavailable(_) | ModelError::BadResponse(_) => "The language model provider failed",
        // The contract has no other code for it; the log tells it apart.
        ModelError::RateLimited { retry_after } => {
            tracing::warn!(
                retry_after_seconds = retry_after.map(|wait| wait.as_secs()),
                "language model provider rate limited the reply"
            );
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "LLM_UNAVAILABLE",
                "The language model provider is rate limiting requests; try again shortly",
            );
        }
    };
    tracing::warn!(error = %error, "language model failed");
    ApiError::new(StatusCode::BAD_GATEWAY, "LLM_UNAVAILABLE", message)
}

/// A reply cut short; what it produced is stored.
pub fn cut_error(cut: ReplyCut) -> ApiError {
    tracing::warn!(cut = %cut, "assistant reply cut short");
    let message = match cut {
        ReplyCut::Stopped => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "SERVER_SHUTTING_DOWN",
                "The server is shutting down; the reply so far is stored",
            );
        }
        ReplyCut::Deadline => "The reply took too long; what it produced so far is stored",
        ReplyCut::Length => "The reply passed its length limit; what it produced so far is stored",
        ReplyCut::Arguments => "The model sent oversized tool arguments; the reply so far is stored",
        ReplyCut::ToolCalls => "The model kept calling tools past its limit; the reply so far is stored",
    };
    ApiError::new(StatusCode::BAD_GATEWAY, "LLM_UNAVAILABLE", message)
}

/// Parses a chat message: `EMPTY_MESSAGE` or `MESSAGE_TOO_LONG` when it does not fit.
pub fn message_text(raw: &str) -> Result<MessageText, ApiError> {
    MessageText::parse(raw).map_err(|error| {
        let code = match error {
            MessageTextError::Empty => "EMPTY_MESSAGE",
            MessageTextError::TooLong { .. } => "MESSAGE_TOO_LONG",
        };
        let mut message = error.to_string();
        if let Some(first) = message.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    })
}

/// Marks the tool calls in `reverted` as no longer revertible.
pub fn mark_reverted(messages: &mut [MessageDto], reverted: &std::collections::HashSet<String>) {
    for call in messages.iter_mut().flat_map(|m| m.tool_calls.iter_mut()) {
        if reverted.contains(&call.id) {
            call.revertible = false;
        }
    }
}
