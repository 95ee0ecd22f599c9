//! The `conversations` and `messages` rows and their conversion to and from
//! the domain types; tool calls are a JSON array in `messages.tool_calls`.

use diesel::prelude::*;
use parley_conversations::{Conversation, ConversationTitle, Message, Role, ToolCall, ToolStatus};
use parley_kernel::{ConversationId, MessageId, UserId};
use serde::{Deserialize, Serialize};

use crate::rows::{CorruptRow, corrupt, from_micros, parse_uuid, to_micros};
use crate::schema::{conversations, messages};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = conversations, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct ConversationRow {
    pub id: String,
    pub user_id: String,
    pub title: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ConversationRow {
    pub(crate) fn from_conversation(conversation: &Conversation) -> Self {
        Self {
            id: conversation.id.to_string(),
            user_id: conversation.owner.to_string(),
            title: conversation.title.as_str().to_owned(),
            created_at: to_micros(conversation.created_at),
            updated_at: to_micros(conversation.updated_at),
        }
    }

    pub(crate) fn into_conversation(self) -> Result<Conversation, CorruptRow> {
        Ok(Conversation {
            id: ConversationId::from_uuid(parse_uuid(&self.id)?),
            owner: UserId::from_uuid(parse_uuid(&self.user_id)?),
            title: ConversationTitle::from_stored(self.title),
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
        })
    }
}

/// A message as read: its conversation is the one asked for, so it is not selected.
#[derive(Queryable, Selectable)]
#[diesel(table_name = messages, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct MessageRow {
    pub id: String,
    pub role: String,
    pub content: String,
    pub tool_calls: String,
    pub created_at: i64,
    pub context_chars: i32,
}

/// A message as stored.
#[derive(Insertable)]
#[diesel(table_name = messages)]
pub(crate) struct NewMessageRow {
    pub id: String,
    pub conversation_id: String,
    pub role: String,
    pub content: String,
    pub tool_calls: String,
    pub created_at: i64,
    pub context_chars: i32,
}

/// `tool_calls` of a message that made none, as stored.
const NO_CALLS: &str = "[]";

/// One element of the `tool_calls` JSON array.
#[derive(Serialize, Deserialize)]
struct StoredToolCall {
    id: String,
    name: String,
    arguments: String,
    result: Option<serde_json::Value>,
    status: StoredStatus,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredStatus {
    Ok,
    Error,
}

impl NewMessageRow {
    pub(crate) fn from_message(conversation: ConversationId, message: &Message) -> Result<Self, CorruptRow> {
        let calls: Vec<StoredToolCall> = message
            .tool_calls
            .iter()
            .map(|call| StoredToolCall {
                id: call.id.clone(),
                name: call.name.clone(),
                arguments: call.arguments.clone(),
                result: call.result.clone(),
                status: match call.status {
                    ToolStatus::Ok => StoredStatus::Ok,
                    ToolStatus::Error => StoredStatus::Error,
                },
            })
            .collect();
        Ok(Self {
            id: message.id.to_string(),
            conversation_id: conversation.to_string(),
            role: message.role.as_str().to_owned(),
            content: message.content.clone(),
            tool_calls: serde_json::to_string(&calls).map_err(corrupt)?,
            created_at: to_micros(message.created_at),
            context_chars: i32::try_from(message.context_chars()).unwrap_or(i32::MAX),
        })
    }
}

impl MessageRow {
    pub(crate) fn into_message(self) -> Result<Message, CorruptRow> {
        // Most messages made no call: no parse for them.
        let calls: Vec<StoredToolCall> = if self.tool_calls == NO_CALLS {
            Vec::new()
        } else {
            serde_json::from_str(&self.tool_calls).map_err(corrupt)?
        };
        Ok(Message {
            id: MessageId::from_uuid(parse_uuid(&self.id)?),
            role: Role::parse(&self.role).ok_or_else(|| corrupt(format!("role {:?}", self.role)))?,
            content: self.content,
            tool_calls: calls
                .into_iter()
                .map(|call| ToolCall {
                    id: call.id,
                    name: call.name,
                    arguments: call.arguments,
                    result: call.result,
                    status: match call.status {
                        StoredStatus::Ok => ToolStatus::Ok,
                        StoredStatus::Error => ToolStatus::Error,
                    },
                })
                .collect(),
            created_at: from_micros(self.created_at)?,
        })
    }
}
