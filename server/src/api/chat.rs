//! `/api/v1/chat`: one-shot chat with the assistant, and the stored conversations.

use std::sync::Arc;

use parley_application::{AssistantEvent, AssistantService};
use parley_kernel::ConversationId;
use poem_openapi::param::{Path, Query};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::api::ApiTags;
use crate::api::conversations::{
    ConversationDto, ConversationSummaryDto, MessageDto, Surface, mark_reverted, message_text,
};
use crate::api::edits::PlanDto;
use crate::api::page_request;
use crate::api::schema::{CursorText, Limit, Nullable, Text};
use crate::body::JsonBody;
use crate::envelope::{Deleted, Envelope, PageEnvelope, ok, page};
use crate::error::{ApiError, Failure, error_set};
use crate::security::BearerAuth;

pub struct ChatApi {
    pub assistant: Arc<AssistantService>,
}

/// A message to the assistant.
#[derive(Debug, Object)]
#[oai(example)]
pub struct ChatBody {
    /// 1 to 2000 characters after trimming.
    pub message: Text<1, 2000, true>,
    /// Continue this conversation; omitted or `null`: start a new one titled from the message.
    #[oai(nullable)]
    pub conversation_id: Option<uuid::Uuid>,
}

impl poem_openapi::types::Example for ChatBody {
    fn example() -> Self {
        Self { message: Text("add a task called buy milk".to_owned()), conversation_id: None }
    }
}

#[derive(Debug, Object)]
pub struct ChatReply {
    pub conversation_id: String,
    // The assistant's reply, with its tool calls. (A doc comment here would
    // wrap the `$ref` in `allOf`, which client generators handle badly.)
    pub message: MessageDto,
    // Changes waiting for approval (`POST /plans/{id}/approve`); `null` when none.
    pub plan: Nullable<PlanDto>,
}

#[derive(ApiResponse)]
pub enum ChatResponse {
    /// The assistant's reply.
    #[oai(status = 200)]
    Ok(Json<Envelope<ChatReply>>),
}

#[derive(ApiResponse)]
pub enum MessagePageResponse {
    /// A page of the conversation's messages, oldest first.
    #[oai(status = 200)]
    Ok(Json<PageEnvelope<MessageDto>>),
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

error_set! {
    /// `POST /chat`.
    ChatErrors: MESSAGE, UNAUTHORIZED, FORBIDDEN, CONVERSATION_NOT_FOUND, TOO_LARGE, RATE_LIMITED, INTERNAL, LLM, DATABASE;
    /// `GET /chat/conversations`.
    ListErrors: VALIDATION, UNAUTHORIZED, INTERNAL, DATABASE;
    /// `GET` and `DELETE /chat/conversations/{id}`.
    ConversationErrors: UNAUTHORIZED, FORBIDDEN, CONVERSATION_NOT_FOUND, INTERNAL, DATABASE;
    /// `GET /chat/conversations/{id}/messages`.
    MessagePageErrors: VALIDATION, UNAUTHORIZED, FORBIDDEN, CONVERSATION_NOT_FOUND, INTERNAL, DATABASE;
}

#[OpenApi(prefix_path = "/api/v1/chat", tag = "ApiTags::Chat")]
impl ChatApi {
    /// Send a message to the assistant and get its reply (counts against the rate limit).
    #[oai(path = "/", method = "post", operation_id = "chat")]
    async fn chat(&self, caller: BearerAuth, body: JsonBody<ChatBody>) -> Result<ChatResponse, Failure<ChatErrors>> {
        let conversation: Option<ConversationId> = match body.0.conversation_id {
            Some(raw) => {
                Some(raw.to_string().parse().map_err(|_| ApiError::field("conversation_id", "must be a UUID"))?)
            }
            None => None,
        };
        let text = message_text(body.0.message.as_str())?;
        let shown = conversation.map(|c| c.to_string()).unwrap_or_default();
        let (id, _) =
            self.assistant.say(caller.0, conversation, text).await.map_err(|e| CHAT.assistant_error(e, &shown))?;
        let mut plan = None;
        let mut on_event = |event| {
            if let AssistantEvent::Approval(held) = event {
                plan = Some(PlanDto::from(held));
            }
        };
        let reply =
            self.assistant.reply(caller.0, id, parley_tasks::Origin::Chat, &mut on_event).await.map_err(|e| {
                let error = CHAT.assistant_error(e, &id.to_string());
                // The conversation may be new: say where the message (and any partial reply) is.
                if error.details.is_none() {
                    error.with_details(serde_json::json!({ "conversation_id": id.to_string() }))
                } else {
                    error
                }
            })?;
        let reply = ChatReply { conversation_id: id.to_string(), message: reply.into(), plan: Nullable(plan) };
        Ok(ChatResponse::Ok(ok(reply)))
    }

    /// List the caller's conversations, most recently updated first.
    #[oai(path = "/conversations", method = "get", operation_id = "list_conversations")]
    async fn list(
        &self,
        caller: BearerAuth,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<Limit>>,
        /// `meta.next_cursor` of the previous page (an opaque token).
        cursor: Query<Option<CursorText>>,
    ) -> Result<ConversationListResponse, Failure<ListErrors>> {
        let request = page_request(&limit, &cursor)?;
        let conversations = self.assistant.list(caller.0, &request).await.map_err(|e| crate::error::store_error(&e))?;
        Ok(ConversationListResponse::Ok(page(conversations, ConversationSummaryDto::from)))
    }

    /// One conversation with its 100 most recent messages (oldest first among them).
    #[oai(path = "/conversations/:id", method = "get", operation_id = "get_conversation")]
    async fn get(
        &self,
        caller: BearerAuth,
        id: Path<String>,
    ) -> Result<ConversationResponse, Failure<ConversationErrors>> {
        let detail = self.assistant.get(caller.0, CHAT.id(&id)?).await.map_err(|e| CHAT.conversation_error(e, &id))?;
        let reverted = self
            .assistant
            .reverted_calls(caller.0, &detail.messages)
            .await
            .map_err(|e| crate::error::store_error(&e))?;
        let mut detail = ConversationDto::from(detail);
        mark_reverted(&mut detail.messages, &reverted);
        Ok(ConversationResponse::Ok(ok(detail)))
    }

    /// Page through a conversation's whole history, oldest first.
    #[oai(path = "/conversations/:id/messages", method = "get", operation_id = "list_conversation_messages")]
    async fn messages(
        &self,
        caller: BearerAuth,
        id: Path<String>,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<Limit>>,
        /// `meta.next_cursor` of the previous page (an opaque token).
        cursor: Query<Option<CursorText>>,
    ) -> Result<MessagePageResponse, Failure<MessagePageErrors>> {
        let conversation = CHAT.id(&id)?;
        let request = page_request(&limit, &cursor)?;
        let messages = self
            .assistant
            .messages(caller.0, conversation, &request)
            .await
            .map_err(|e| CHAT.conversation_error(e, &id))?;
        let reverted = self
            .assistant
            .reverted_calls(caller.0, &messages.items)
            .await
            .map_err(|e| crate::error::store_error(&e))?;
        let mut listed = page(messages, MessageDto::from);
        mark_reverted(&mut listed.0.data, &reverted);
        Ok(MessagePageResponse::Ok(listed))
    }

    /// Delete a conversation and its messages.
    #[oai(path = "/conversations/:id", method = "delete", operation_id = "delete_conversation")]
    async fn delete(
        &self,
        caller: BearerAuth,
        id: Path<String>,
    ) -> Result<DeleteConversationResponse, Failure<ConversationErrors>> {
        let conversation = CHAT.id(&id)?;
        self.assistant.delete(caller.0, conversation).await.map_err(|e| CHAT.conversation_error(e, &id))?;
        Ok(DeleteConversationResponse::Ok(ok(Deleted::new(conversation))))
    }
}
