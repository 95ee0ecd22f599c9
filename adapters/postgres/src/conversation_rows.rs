//! The `conversations` and `messages` rows and their conversion to and from
//! the domain types; tool calls are a JSON array in `messages.tool_calls`.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use parley_conversations::{Conversation, ConversationTitle, Message, Role, ToolCall, ToolStatus};
use parley_kernel::{ConversationId, MessageId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::PgError;
use crate::schema::{conversations, messages};

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations, check_for_backend(Pg), treat_none_as_default_value = false)]
pub(crate) struct ConversationRow {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) title: String,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl From<ConversationRow> for Conversation {
    fn from(row: ConversationRow) -> Self {
        Self {
            id: ConversationId::from_uuid(row.id),
            owner: UserId::from_uuid(row.user_id),
            title: ConversationTitle::from_stored(row.title),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = messages, check_for_backend(Pg), treat_none_as_default_value = false)]
pub(crate) struct MessageRow {
    pub(crate) id: Uuid,
    pub(crate) conversation_id: Uuid,
    pub(crate) role: String,
    pub(crate) content: String,
    pub(crate) tool_calls: serde_json::Value,
    pub(crate) created_at: Timestamp,
    pub(crate) context_chars: i32,
}

/// A row of [`HISTORY`].
#[derive(QueryableByName)]
pub(crate) struct HistoryRow {
    #[diesel(embed)]
    pub(crate) message: MessageRow,
    /// Whether the conversation has a message older than this one.
    #[diesel(sql_type = Bool)]
    pub(crate) older: bool,
}

/// A turn's history (`ConversationRepository::history`), newest first: the
/// running total of `context_chars` says where to stop, so the messages past
/// the budget are neither sent nor decoded. $1 the conversation, $2 the most
/// messages, $3 the characters.
pub(crate) const HISTORY: &str = "SELECT id, conversation_id, role, content, tool_calls, created_at, context_chars, older \
     FROM (SELECT m.*, sum(context_chars) OVER newest AS upto, lead(id) OVER newest IS NOT NULL AS older \
           FROM messages m WHERE conversation_id = $1 \
           WINDOW newest AS (ORDER BY created_at DESC, id DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) \
           ORDER BY created_at DESC, id DESC LIMIT $2) recent \
     WHERE upto - context_chars < $3 ORDER BY created_at DESC, id DESC";

/// One element of `messages.tool_calls`.
#[derive(Serialize, Deserialize)]
pub(crate) struct ToolCallJson {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arguments: String,
    pub(crate) result: Option<serde_json::Value>,
    pub(crate) status: String,
}

impl MessageRow {
    pub(crate) fn new(conversation: ConversationId, message: &Message) -> Result<Self, PgError> {
        let calls: Vec<ToolCallJson> = message
            .tool_calls
            .iter()
            .map(|call| ToolCallJson {
                id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                result: call.result.clone(),
                status: call.status.as_str().to_owned(),
            })
            .collect();
        Ok(Self {
            id: message.id.as_uuid(),
            conversation_id: conversation.as_uuid(),
            role: message.role.as_str().to_owned(),
            content: message.content.clone(),
            tool_calls: serde_json::to_value(calls).map_err(PgError::corrupt)?,
            created_at: message.created_at,
            context_chars: i32::try_from(message.context_chars()).unwrap_or(i32::MAX),
        })
    }
}

impl TryFrom<MessageRow> for Message {
    type Error = PgError;

    fn try_from(row: MessageRow) -> Result<Self, PgError> {
        let calls: Vec<ToolCallJson> = serde_json::from_value(row.tool_calls).map_err(PgError::corrupt)?;
        let tool_calls = calls
            .into_iter()
            .map(|call| {
                let status = match call.status.as_str() {
                    "ok" => ToolStatus::Ok,
                    "error" => ToolStatus::Error,
                    other => {
                        return Err(PgError::corrupt(format_args!("tool call status {other:?}")));
                    }
                };
                Ok(ToolCall { id: call.id, name: call.name, arguments: call.arguments, result: call.result, status })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id: MessageId::from_uuid(row.id),
            role: Role::parse(&row.role).ok_or_else(|| PgError::corrupt(format_args!("role {:?}", row.role)))?,
            content: row.content,
            tool_calls,
            created_at: row.created_at,
        })
    }
}
