//! `/api/v1/chatkit`: conversations seen as ChatKit sessions, replies streamed over SSE.

use std::sync::Arc;

use futures_util::stream::{self, BoxStream};
use parley_application::{AssistantEvent, AssistantService};
use parley_conversations::ConversationTitle;
use poem::web::sse::Event;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::EventStream;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use serde_json::{Value, json};

use crate::api::ApiTags;
use crate::api::conversations::{
    ConversationDto, ConversationSummaryDto, MessageDto, Surface, ToolCallDto, mark_reverted, message_text,
};
use crate::api::page_request;
use crate::api::schema::{CursorText, EventStreamOf, Limit, SseEventDoc, Text};
use crate::body::JsonBody;
use crate::envelope::{Deleted, Envelope, PageEnvelope, Time, ok, page};
use crate::error::{Failure, error_set};
use crate::security::BearerAuth;
use crate::shutdown::Draining;

pub struct ChatKitApi {
    pub assistant: Arc<AssistantService>,
    /// When it is set, a reply still streaming ends with `SERVER_SHUTTING_DOWN`.
    pub draining: Draining,
}

const KIT: Surface = Surface::ChatKit;

error_set! {
    /// `POST /chatkit/sessions`.
    CreateErrors: UNAUTHORIZED, RATE_LIMITED, INTERNAL, DATABASE;
    /// `GET /chatkit/sessions`.
    ListErrors: VALIDATION, UNAUTHORIZED, RATE_LIMITED, INTERNAL, DATABASE;
    /// `GET`, `DELETE /chatkit/sessions/{id}` and `POST .../threads`.
    ConversationErrors: UNAUTHORIZED, FORBIDDEN, SESSION_NOT_FOUND, RATE_LIMITED, INTERNAL, DATABASE;
    /// `POST /chatkit/sessions/{id}/messages`.
    MessageErrors: MESSAGE, UNAUTHORIZED, FORBIDDEN, SESSION_NOT_FOUND, TOO_LARGE, RATE_LIMITED, INTERNAL, LLM, DATABASE;
}

#[derive(Debug, Object)]
pub struct ChatKitSession {
    pub id: String,
    pub user_id: String,
    /// Equals `id`: one thread per session.
    pub thread_id: String,
    pub created_at: Time,
}

#[derive(Debug, Object)]
pub struct ChatKitThread {
    pub session_id: String,
    pub thread_id: String,
}

#[derive(Debug, Object)]
#[oai(example)]
pub struct ChatKitMessageBody {
    /// 1 to 2000 characters after trimming.
    pub text: Text<1, 2000, true>,
}

impl poem_openapi::types::Example for ChatKitMessageBody {
    fn example() -> Self {
        Self { text: Text("list my pending tasks".to_owned()) }
    }
}

/// One Server-Sent Event: `event:` is `event`, `data:` is `data` as JSON
/// (`done` carries the literal `[DONE]`).
#[derive(Debug, Object)]
pub struct StreamEvent {
    /// `message.created`, `assistant.delta`, `tool.call`, `message.completed`, `error` or `done`.
    pub event: String,
    pub data: Value,
}

impl StreamEvent {
    fn new(event: &str, data: Value) -> Self {
        Self { event: event.to_owned(), data }
    }

    fn into_sse(self) -> Event {
        let data = if self.event == "done" { "[DONE]".to_owned() } else { self.data.to_string() };
        Event::message(data).event_type(self.event)
    }
}

#[derive(ApiResponse)]
pub enum CreateSessionResponse {
    /// The session was created.
    #[oai(status = 201)]
    Created(Json<Envelope<ChatKitSession>>),
}

#[derive(ApiResponse)]
pub enum ThreadResponse {
    /// The session's thread (its id equals the session's).
    #[oai(status = 200)]
    Ok(Json<Envelope<ChatKitThread>>),
}

#[derive(ApiResponse)]
pub enum StreamResponse {
    /// `text/event-stream`: message.created, assistant.delta*, tool.call*, message.completed, done — or error.
    #[oai(status = 200)]
    Ok(EventStreamOf<StreamEvent, SseEventDoc>),
}

#[derive(ApiResponse)]
pub enum SessionListResponse {
    /// A page of sessions, most recently updated first.
    #[oai(status = 200)]
    Ok(Json<PageEnvelope<ConversationSummaryDto>>),
}

#[derive(ApiResponse)]
pub enum SessionResponse {
    /// The session with its messages, oldest first.
    #[oai(status = 200)]
    Ok(Json<Envelope<ConversationDto>>),
}

#[derive(ApiResponse)]
pub enum DeleteSessionResponse {
    /// Deleted with its messages.
    #[oai(status = 200)]
    Ok(Json<Envelope<Deleted>>),
}

fn message_event(event: &str, message: parley_conversations::Message) -> StreamEvent {
    StreamEvent::new(event, json!({ "message": MessageDto::from(message).to_json() }))
}

#[OpenApi(prefix_path = "/api/v1/chatkit/sessions", tag = "ApiTags::ChatKit")]
impl ChatKitApi {
    /// Create a session (a new, empty conversation).
    #[oai(path = "/", method = "post", operation_id = "create_chatkit_session")]
    async fn create(&self, caller: BearerAuth) -> Result<CreateSessionResponse, Failure<CreateErrors>> {
        let title = ConversationTitle::from_stored("New chat".to_owned());
        let conversation =
            self.assistant.create_conversation(caller.0, title).await.map_err(|e| KIT.assistant_error(e, ""))?;
        let id = conversation.id.to_string();
        Ok(CreateSessionResponse::Created(ok(ChatKitSession {
            thread_id: id.clone(),
            id,
            user_id: caller.0.to_string(),
            created_at: conversation.created_at.into(),
        })))
    }

    /// The session's thread; calling it again returns the same.
    #[oai(path = "/:id/threads", method = "post", operation_id = "create_chatkit_thread")]
    async fn thread(
        &self,
        caller: BearerAuth,
        id: Path<String>,
    ) -> Result<ThreadResponse, Failure<ConversationErrors>> {
        let conversation = KIT.id(&id)?;
        self.assistant.get(caller.0, conversation).await.map_err(|e| KIT.conversation_error(e, &id))?;
        Ok(ThreadResponse::Ok(ok(ChatKitThread {
            session_id: conversation.to_string(),
            thread_id: conversation.to_string(),
        })))
    }

    /// Send a message; the reply streams as Server-Sent Events. The reply is
    /// completed and stored even if the client disconnects. A reply cut short
    /// (provider failure, a limit, its deadline, or the server shutting down)
    /// ends with an `error` event; what it produced so far is stored.
    #[oai(path = "/:id/messages", method = "post", operation_id = "send_chatkit_message")]
    async fn message(
        &self,
        caller: BearerAuth,
        id: Path<String>,
        body: JsonBody<ChatKitMessageBody>,
    ) -> Result<StreamResponse, Failure<MessageErrors>> {
        let conversation = KIT.id(&id)?;
        let text = message_text(body.0.text.as_str())?;
        let (conversation, stored) =
            self.assistant.say(caller.0, Some(conversation), text).await.map_err(|e| KIT.assistant_error(e, &id))?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let _ = tx.send(message_event("message.created", stored));
        let assistant = self.assistant.clone();
        let owner = caller.0;
        let mut draining = self.draining.clone();
        let stop = Box::pin(async move { draining.started().await });
        tokio::spawn(async move {
            let mut forward = |event: AssistantEvent| {
                let event = match event {
                    AssistantEvent::Delta(delta) => StreamEvent::new("assistant.delta", json!({ "delta": delta })),
                    AssistantEvent::ToolCall(call) => {
                        StreamEvent::new("tool.call", json!({ "tool_call": ToolCallDto::from(call).to_json() }))
                    }
                    AssistantEvent::Approval(plan) => StreamEvent::new(
                        "approval.required",
                        json!({ "plan": crate::api::edits::PlanDto::from(plan).to_json() }),
                    ),
                };
                let _ = tx.send(event);
            };
            match assistant.reply_until(owner, conversation, parley_tasks::Origin::Chatkit, &mut forward, stop).await {
                Ok(reply) => {
                    let _ = tx.send(message_event("message.completed", reply));
                    let _ = tx.send(StreamEvent::new("done", Value::Null));
                }
                Err(error) => {
                    let api = KIT.assistant_error(error, &conversation.to_string());
                    let _ = tx.send(StreamEvent::new("error", json!({ "code": api.code, "message": api.message })));
                }
            }
        });
        let events = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|event| (event, rx)) });
        Ok(StreamResponse::Ok(EventStreamOf(
            EventStream::new(Box::pin(crate::metrics::open_sse("chatkit", events)) as BoxStream<'static, StreamEvent>)
                .to_event(StreamEvent::into_sse),
            std::marker::PhantomData,
        )))
    }

    /// List the caller's sessions, most recently updated first.
    #[oai(path = "/", method = "get", operation_id = "list_chatkit_sessions")]
    async fn list(
        &self,
        caller: BearerAuth,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<Limit>>,
        /// `meta.next_cursor` of the previous page (an opaque token).
        cursor: Query<Option<CursorText>>,
    ) -> Result<SessionListResponse, Failure<ListErrors>> {
        let request = page_request(&limit, &cursor)?;
        let sessions = self.assistant.list(caller.0, &request).await.map_err(|e| crate::error::store_error(&e))?;
        Ok(SessionListResponse::Ok(page(sessions, ConversationSummaryDto::from)))
    }

    /// One session with its messages and tool calls.
    #[oai(path = "/:id", method = "get", operation_id = "get_chatkit_session")]
    async fn get(&self, caller: BearerAuth, id: Path<String>) -> Result<SessionResponse, Failure<ConversationErrors>> {
        let detail = self.assistant.get(caller.0, KIT.id(&id)?).await.map_err(|e| KIT.conversation_error(e, &id))?;
        let reverted = self
            .assistant
            .reverted_calls(caller.0, &detail.messages)
            .await
            .map_err(|e| crate::error::store_error(&e))?;
        let mut detail = ConversationDto::from(detail);
        mark_reverted(&mut detail.messages, &reverted);
        Ok(SessionResponse::Ok(ok(detail)))
    }

    /// Delete a session and its messages.
    #[oai(path = "/:id", method = "delete", operation_id = "delete_chatkit_session")]
    async fn delete(
        &self,
        caller: BearerAuth,
        id: Path<String>,
    ) -> Result<DeleteSessionResponse, Failure<ConversationErrors>> {
        let conversation = KIT.id(&id)?;
        self.assistant.delete(caller.0, conversation).await.map_err(|e| KIT.conversation_error(e, &id))?;
        Ok(DeleteSessionResponse::Ok(ok(Deleted::new(conversation))))
    }
}
