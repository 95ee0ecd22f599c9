//! `/api/v1/chat`: one-shot chat with the assistant, and the stored conversations.

use std::sync::Arc;

use parley_application::AssistantService;
use parley_kernel::ConversationId;
use poem_openapi::param::{Path, Query};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::api::ApiTags;
use crate::api::conversations::{ConversationDto, ConversationSummaryDto, MessageDto, Surface, message_text};
use crate::api::tasks::page_request;
use crate::body::JsonBody;
use crate::envelope::{Deleted, Envelope, PageEnvelope, ok, page};
use crate::error::ApiError;
use crate::security::BearerAuth;

pub struct ChatApi {
    pub assistant: Arc<AssistantService>,
}

#[derive(Debug, Object)]
pub struct ChatBody {
    /// 1 to 2000 characters after trimming.
    pub message: String,
    /// Continue this conversation; omitted: start a new one titled from the message.
    pub conversation_id: Option<String>,
}

#[derive(Debug, Object)]
pub struct ChatReply {
    pub conversation_id: String,
    /// The assistant's reply, with its tool calls.
    pub message: MessageDto,
}

#[derive(ApiResponse)]
pub enum ChatResponse {
    /// The assistant's reply.
    #[oai(status = 200)]
    Ok(Json<Envelope<ChatReply>>),
}

#[derive(ApiResponse)]
pub enum ConversationListResponse {
    /// A page of conversations, most recently updated first.
    #[oai(status = 200)]
    Ok(Json<PageEnvelope<ConversationSummaryDto>>),
}

#[derive(ApiResponse)]
pub enum ConversationResponse {
    /// The conversation with its messages, oldest first.
    #[oai(status = 200)]
    Ok(Json<Envelope<ConversationDto>>),
}

#[derive(ApiResponse)]
pub enum DeleteConversationResponse {
    /// Deleted with its messages (tasks it made stay).
    #[oai(status = 200)]
    Ok(Json<Envelope<Deleted>>),
}

const CHAT: Surface = Surface::Chat;

#[OpenApi(prefix_path = "/api/v1/chat", tag = "ApiTags::Chat")]
impl ChatApi {
    /// Send a message to the assistant and get its reply (counts against the rate limit).
    #[oai(path = "/", method = "post")]
    async fn chat(&self, caller: BearerAuth, body: JsonBody<ChatBody>) -> Result<ChatResponse, ApiError> {
        let conversation: Option<ConversationId> = match body.0.conversation_id.as_deref() {
            Some(raw) => Some(raw.parse().map_err(|_| ApiError::field("conversation_id", "must be a UUID"))?),
            None => None,
        };
        let text = message_text(&body.0.message)?;
        let shown = conversation.map(|c| c.to_string()).unwrap_or_default();
        let (id, _) =
            self.assistant.say(caller.0, conversation, text).await.map_err(|e| CHAT.assistant_error(e, &shown))?;
        let reply = self.assistant.reply(caller.0, id, &mut |_| {}).await.map_err(|e| {
            let error = CHAT.assistant_error(e, &id.to_string());
            // The conversation may be new: say where the message (and any partial reply) is.
            if error.details.is_none() {
                error.with_details(serde_json::json!({ "conversation_id": id.to_string() }))
            } else {
                error
            }
        })?;
        Ok(ChatResponse::Ok(ok(ChatReply { conversation_id: id.to_string(), message: reply.into() })))
    }

    /// List the caller's conversations, most recently updated first.
    #[oai(path = "/conversations", method = "get")]
    async fn list(
        &self,
        caller: BearerAuth,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<i64>>,
        /// `meta.next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<ConversationListResponse, ApiError> {
        let request = page_request(limit.0, cursor.0.as_deref())?;
        let conversations = self.assistant.list(caller.0, &request).await.map_err(|e| crate::store_error(&e))?;
        Ok(ConversationListResponse::Ok(page(conversations, ConversationSummaryDto::from)))
    }

    /// One conversation with its messages.
    #[oai(path = "/conversations/:id", method = "get")]
    async fn get(&self, caller: BearerAuth, id: Path<String>) -> Result<ConversationResponse, ApiError> {
        let detail = self.assistant.get(caller.0, CHAT.id(&id)?).await.map_err(|e| CHAT.conversation_error(e, &id))?;
        Ok(ConversationResponse::Ok(ok(detail.into())))
    }

    /// Delete a conversation and its messages.
    #[oai(path = "/conversations/:id", method = "delete")]
    async fn delete(&self, caller: BearerAuth, id: Path<String>) -> Result<DeleteConversationResponse, ApiError> {
        let conversation = CHAT.id(&id)?;
        self.assistant.delete(caller.0, conversation).await.map_err(|e| CHAT.conversation_error(e, &id))?;
        Ok(DeleteConversationResponse::Ok(ok(Deleted::new(conversation))))
    }
}
