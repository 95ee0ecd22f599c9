//! `POST /api/v1/chatkit`: the ChatKit server protocol (what the
//! `@openai/chatkit` web component speaks; reference: the `openai-chatkit`
//! Python package 1.6.x) over the same conversations as `/chat` and
//! `/chatkit/sessions`. A thread is a conversation; its items are its
//! stored messages (see `items`). Streaming requests answer
//! `text/event-stream`, one `data: <ThreadStreamEvent>` per event; the
//! others answer the reference server's JSON, without the envelope. Errors
//! before a stream starts use the envelope, as everywhere.

mod items;
mod requests;

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::{self, BoxStream};
use parley_application::{AssistantEvent, AssistantService};
use parley_conversations::{ConversationDetail, ConversationError, ConversationTitle, Message};
use parley_kernel::{ConversationId, Cursor, MessageId, PageRequest, UserId};
use poem::http::StatusCode;
use poem::web::sse::{Event, SSE};
use poem::{FromRequest, IntoResponse, Request, RequestBody, Response};
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, OpenApi, impl_apirequest_for_payload};
use serde_json::{Value, json};

use crate::api::ApiTags;
use crate::api::conversations::{Surface, message_text};
use crate::body::JsonBody;
use crate::error::{ApiError, Documented, ErrorSet, Failure, statuses};
use crate::security::BearerAuth;
use crate::shutdown::Draining;

pub use requests::ChatKitRequest;
use requests::{FeedbackKind, Order, UserMessageInput};

/// Messages of a thread read for `items.list` and `threads.get_by_id`: a
/// longer thread shows its most recent ones through this door.
pub const ITEMS_WINDOW: usize = 1000;
/// Threads read for `threads.list` in ascending order.
pub const THREADS_WINDOW: usize = 1000;
/// The reference server's page size when `limit` is not given.
const DEFAULT_LIMIT: usize = 20;

pub struct ChatKitProtocolApi {
    pub assistant: Arc<AssistantService>,
    /// When it is set, a reply still streaming ends with an `error` event.
    pub draining: Draining,
}

const BAD_REQUEST: Documented = Documented {
    status: 400,
    description: "The request is not a ChatKit request Parley takes (`VALIDATION_ERROR`), a feature Parley does not \
                  offer (`NOT_SUPPORTED`: attachments, transcription, structured input, synchronous actions), or \
                  the message is blank (`EMPTY_MESSAGE`) or over 2000 characters (`MESSAGE_TOO_LONG`)",
    code: "VALIDATION_ERROR",
};
const THREAD_NOT_FOUND: Documented = Documented {
    status: 404,
    description: "No thread (conversation) with this id (`CONVERSATION_NOT_FOUND`)",
    code: "CONVERSATION_NOT_FOUND",
};

/// The errors of `POST /chatkit`, answered before any stream starts.
pub struct ProtocolErrors;

impl ErrorSet for ProtocolErrors {
    const STATUSES: &'static [Documented] = &[
        BAD_REQUEST,
        statuses::UNAUTHORIZED,
        statuses::FORBIDDEN,
        THREAD_NOT_FOUND,
        statuses::TOO_LARGE,
        statuses::RATE_LIMITED,
        statuses::INTERNAL,
        statuses::DATABASE,
    ];
}

/// The request body: refuses the protocol's types Parley does not offer with
/// `NOT_SUPPORTED` (so the component can say so), then parses the rest.
pub struct ProtocolBody(pub ChatKitRequest);

impl Payload for ProtocolBody {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        JsonBody::<ChatKitRequest>::check_content_type(content_type)
    }

    fn schema_ref() -> MetaSchemaRef {
        ChatKitRequest::schema_ref()
    }

    fn register(registry: &mut Registry) {
        ChatKitRequest::register(registry);
    }
}

impl ParsePayload for ProtocolBody {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(&data)
            && let Some(Value::String(kind)) = object.get("type")
            && requests::NOT_SUPPORTED.contains(&kind.as_str())
        {
            return Err(not_supported(kind).into());
        }
        let mut body = RequestBody::new(data.into());
        JsonBody::<ChatKitRequest>::from_request(request, &mut body).await.map(|parsed| Self(parsed.0))
    }
}

impl_apirequest_for_payload!(ProtocolBody);

fn not_supported(kind: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "NOT_SUPPORTED", format!("Parley does not offer `{kind}`"))
        .with_details(json!({ "type": kind }))
}

/// A JSON answer, or a stream of `ThreadStreamEvent`s.
pub enum ProtocolAnswer {
    Json(Value),
    Stream(BoxStream<'static, Value>),
}

impl IntoResponse for ProtocolAnswer {
    fn into_response(self) -> Response {
        match self {
            Self::Json(value) => {
                Response::builder().content_type("application/json; charset=utf-8").body(value.to_string())
            }
            Self::Stream(events) => {
                let events = crate::metrics::open_sse("chatkit_protocol", events);
                SSE::new(events.map(|event| Event::message(event.to_string()))).into_response()
            }
        }
    }
}

impl ApiResponse for ProtocolAnswer {
    fn meta() -> MetaResponses {
        let mut json = MetaSchema::new("object");
        json.description = Some(
            "Non-streaming types: the reference server's JSON, without the envelope — `threads.get_by_id`, \
             `threads.update`: a Thread; `threads.list`: a Page of Thread; `items.list`: a Page of ThreadItem; \
             `items.feedback`, `threads.delete`: `{}`.",
        );
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The answer: JSON, or Server-Sent Events for the streaming types",
                status: Some(200),
                status_range: None,
                content: vec![
                    MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: MetaSchemaRef::Inline(Box::new(json)),
                    },
                    MetaMediaType { content_type: "text/event-stream", schema: ProtocolEvent::schema_ref() },
                ],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        ProtocolEvent::register(registry);
    }
}

/// One Server-Sent Event of a streaming type (`threads.create`,
/// `threads.add_user_message`, `threads.retry_after_item`,
/// `threads.custom_action`, `threads.add_client_tool_output`): a single
/// `data:` line, no `event:` name.
#[derive(Debug, poem_openapi::Object)]
#[oai(rename = "ChatKitStreamEvent")]
pub struct ProtocolEvent {
    /// A `ThreadStreamEvent` as JSON text: `thread.created`, `thread.item.added`,
    /// `thread.item.updated`, `thread.item.done`, `stream_options`, `error`.
    pub data: String,
}

fn thread_not_found(id: &str) -> ApiError {
    ApiError::not_found("CONVERSATION_NOT_FOUND", "Thread", "thread_id", id)
}

fn conversation_error(error: ConversationError, id: ConversationId) -> ApiError {
    match error {
        ConversationError::NotFound => thread_not_found(&id.to_string()),
        other => Surface::Chat.conversation_error(other, &id.to_string()),
    }
}

fn limit_of(limit: Option<requests::ParamsLimit>) -> usize {
    limit.and_then(|l| usize::try_from(l.0).ok()).filter(|l| (1..=100).contains(l)).unwrap_or(DEFAULT_LIMIT)
}

fn check_limit(limit: Option<requests::ParamsLimit>) -> Result<(), ApiError> {
    match limit {
        Some(l) if !(1..=100).contains(&l.0) => Err(ApiError::field("params.limit", "must be between 1 and 100")),
        _ => Ok(()),
    }
}

/// The text of a message input, checked as the other doors check it.
fn input_text(input: &UserMessageInput) -> Result<parley_conversations::MessageText, ApiError> {
    let text = input.content.first().map(|part| part.text.as_str()).unwrap_or_default();
    message_text(text)
}

fn single<T: Send + 'static>(value: T) -> BoxStream<'static, T> {
    stream::iter([value]).boxed()
}

#[OpenApi(tag = "ApiTags::ChatKit")]
impl ChatKitProtocolApi {
    /// The ChatKit server protocol: a `{"type", "params"}` request as the
    /// ChatKit web component sends it. Streaming types answer Server-Sent
    /// Events (`data: <ThreadStreamEvent>`), the others JSON as the
    /// reference server does. A thread is a conversation: the same id and
    /// title through `/chat` and `/chatkit/sessions`. A reply runs to its end
    /// and is stored even if the client goes away; one that fails ends with
    /// an `error` event (`allow_retry: true`). See docs/chatkit.md.
    #[oai(path = "/api/v1/chatkit", method = "post", operation_id = "chatkit_protocol")]
    async fn call(&self, caller: BearerAuth, body: ProtocolBody) -> Result<ProtocolAnswer, Failure<ProtocolErrors>> {
        let owner = caller.0;
        let answer = match body.0 {
            ChatKitRequest::Create(request) => {
                let text = input_text(&request.params.input)?;
                let (id, stored) =
                    self.assistant.say(owner, None, text).await.map_err(|e| Surface::Chat.assistant_error(e, ""))?;
                let header = self.header(owner, id).await?;
                let created = json!({"type": "thread.created", "thread": items::thread(&header.conversation, items::empty_page())});
                ProtocolAnswer::Stream(self.reply(owner, id, Some(created), Some(&stored)))
            }
            ChatKitRequest::AddUserMessage(request) => {
                let id = ConversationId::from_uuid(request.params.thread_id);
                let text = input_text(&request.params.input)?;
                let (id, stored) = self.assistant.say(owner, Some(id), text).await.map_err(|e| match e {
                    parley_application::AssistantError::Conversation(e) => conversation_error(e, id),
                    other => Surface::Chat.assistant_error(other, &id.to_string()),
                })?;
                ProtocolAnswer::Stream(self.reply(owner, id, None, Some(&stored)))
            }
            ChatKitRequest::RetryAfterItem(request) => {
                let id = ConversationId::from_uuid(request.params.thread_id);
                let detail =
                    self.assistant.recent(owner, id, ITEMS_WINDOW).await.map_err(|e| conversation_error(e, id))?;
                let item = request.params.item_id.as_str();
                let user_message = detail
                    .messages
                    .iter()
                    .find(|m| m.role == parley_conversations::Role::User && m.id.to_string() == item)
                    .map(|m| m.id);
                match user_message {
                    Some(message) => {
                        self.assistant.forget_after(owner, id, message).await.map_err(|e| conversation_error(e, id))?;
                        ProtocolAnswer::Stream(self.reply(owner, id, None, None))
                    }
                    None => ProtocolAnswer::Stream(single(items::error_event(
                        "Only the reply to one of this thread's user messages can be retried",
                        false,
                    ))),
                }
            }
            ChatKitRequest::CustomAction(request) => {
                let thread = request.params.thread_id;
                self.header(owner, ConversationId::from_uuid(thread)).await?;
                ProtocolAnswer::Stream(single(
                    self.plan_action(owner, &thread.to_string(), &request.params.action).await,
                ))
            }
            ChatKitRequest::AddClientToolOutput(request) => {
                self.header(owner, ConversationId::from_uuid(request.params.thread_id)).await?;
                ProtocolAnswer::Stream(single(items::error_event("Parley offers no client tools", false)))
            }
            ChatKitRequest::GetById(request) => {
                let id = ConversationId::from_uuid(request.params.thread_id);
                let detail =
                    self.assistant.recent(owner, id, ITEMS_WINDOW).await.map_err(|e| conversation_error(e, id))?;
                let all = thread_items(&detail);
                let items = paginate(all, Order::Asc, None, DEFAULT_LIMIT);
                ProtocolAnswer::Json(items::thread(&detail.conversation, items))
            }
            ChatKitRequest::List(request) => {
                check_limit(request.params.limit)?;
                let limit = limit_of(request.params.limit);
                let after = match &request.params.after {
                    Some(after) => Some(
                        Cursor::decode(after.as_str())
                            .map_err(|_| ApiError::field("params.after", "malformed cursor"))?,
                    ),
                    None => None,
                };
                ProtocolAnswer::Json(self.threads(owner, request.params.order.unwrap_or_default(), after, limit).await?)
            }
            ChatKitRequest::ItemsList(request) => {
                check_limit(request.params.limit)?;
                let id = ConversationId::from_uuid(request.params.thread_id);
                let detail =
                    self.assistant.recent(owner, id, ITEMS_WINDOW).await.map_err(|e| conversation_error(e, id))?;
                let after = request.params.after.as_ref().map(|a| a.as_str().to_owned());
                let order = request.params.order.unwrap_or_default();
                ProtocolAnswer::Json(paginate(
                    thread_items(&detail),
                    order,
                    after.as_deref(),
                    limit_of(request.params.limit),
                ))
            }
            ChatKitRequest::Feedback(request) => {
                let id = ConversationId::from_uuid(request.params.thread_id);
                let kind = match request.params.kind {
                    FeedbackKind::Positive => parley_conversations::FeedbackKind::Positive,
                    FeedbackKind::Negative => parley_conversations::FeedbackKind::Negative,
                };
                let items: Vec<String> = request.params.item_ids.into_iter().map(|item| item.0).collect();
                self.assistant.give_feedback(owner, id, &items, kind).await.map_err(|e| conversation_error(e, id))?;
                ProtocolAnswer::Json(json!({}))
            }
            ChatKitRequest::Update(request) => {
                let id = ConversationId::from_uuid(request.params.thread_id);
                let title = request.params.title.as_str().trim();
                if title.is_empty() || title.chars().count() > ConversationTitle::MAX_CHARS {
                    return Err(ApiError::field("params.title", "must hold 1 to 60 characters after trimming").into());
                }
                let detail = self
                    .assistant
                    .rename(owner, id, ConversationTitle::from_stored(title.to_owned()))
                    .await
                    .map_err(|e| conversation_error(e, id))?;
                ProtocolAnswer::Json(items::thread(&detail.conversation, items::empty_page()))
            }
            ChatKitRequest::Delete(request) => {
                let id = ConversationId::from_uuid(request.params.thread_id);
                self.assistant.delete(owner, id).await.map_err(|e| conversation_error(e, id))?;
                ProtocolAnswer::Json(json!({}))
            }
        };
        Ok(answer)
    }
}

impl ChatKitProtocolApi {
    /// The thread's header, after checking it is the caller's.
    async fn header(&self, owner: UserId, id: ConversationId) -> Result<ConversationDetail, ApiError> {
        self.assistant.recent(owner, id, 0).await.map_err(|e| conversation_error(e, id))
    }

    /// `threads.list`: newest first from the store's pages; oldest first
    /// over the most recent [`THREADS_WINDOW`] threads.
    async fn threads(
        &self,
        owner: UserId,
        order: Order,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<Value, ApiError> {
        let thread = |summary: &parley_conversations::ConversationSummary| {
            items::thread(&summary.conversation, items::empty_page())
        };
        let key = |summary: &parley_conversations::ConversationSummary| {
            Cursor { at: summary.conversation.updated_at, id: summary.conversation.id.as_uuid() }.encode()
        };
        if order == Order::Desc {
            let request = PageRequest::new(i64::try_from(limit).ok(), after)
                .map_err(|_| ApiError::field("params.limit", "must be between 1 and 100"))?;
            let page = self.assistant.list(owner, &request).await.map_err(|e| crate::error::store_error(&e))?;
            let has_more = page.next_cursor.is_some();
            let data = page.items.iter().map(thread).collect();
            return Ok(items::page(data, has_more, page.next_cursor.map(|c| c.encode())));
        }
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let request = PageRequest::new(Some(100), cursor).map_err(|_| ApiError::field("params.limit", "bad"))?;
            let page = self.assistant.list(owner, &request).await.map_err(|e| crate::error::store_error(&e))?;
            all.extend(page.items);
            cursor = page.next_cursor;
            if cursor.is_none() || all.len() >= THREADS_WINDOW {
                break;
            }
        }
        all.reverse();
        let start = match after {
            Some(after) => match all.iter().position(|s| s.conversation.id.as_uuid() == after.id) {
                Some(index) => index + 1,
                None => all.len(),
            },
            None => 0,
        };
        let rest = &all[start.min(all.len())..];
        let shown = &rest[..limit.min(rest.len())];
        let has_more = rest.len() > shown.len();
        Ok(items::page(shown.iter().map(thread).collect(), has_more, shown.last().map(key)))
    }

    /// A plan widget's Confirm or Cancel: the plan decided, answered as an
    /// assistant message saying so, or an `error` event (decided, expired,
    /// conflict, unknown action).
    async fn plan_action(&self, owner: UserId, thread_id: &str, action: &requests::Action) -> Value {
        let decision = match action.kind.as_str() {
            items::PLAN_APPROVE => parley_tasks::Decision::Approve,
            items::PLAN_REJECT => parley_tasks::Decision::Reject,
            _ => return items::error_event("Parley offers no such widget action", false),
        };
        let plan = action
            .payload
            .as_ref()
            .and_then(|p| p.get("plan_id"))
            .and_then(Value::as_str)
            .and_then(|id| uuid::Uuid::parse_str(id).ok());
        let Some(plan) = plan else {
            return items::error_event("The action names no plan", false);
        };
        match self.assistant.decide(owner, plan, decision).await {
            Ok(decided) => {
                let text = match decision {
                    parley_tasks::Decision::Approve => "Approved: the changes are done.",
                    parley_tasks::Decision::Reject => "Rejected: nothing was changed.",
                };
                let id = format!("plan_{}_outcome", decided.id);
                json!({"type": "thread.item.done",
                       "item": items::assistant_message(thread_id, &id, Some(text), chrono::Utc::now())})
            }
            Err(error) => {
                let message = match error {
                    parley_tasks::PlanError::NotFound => "No such plan".to_owned(),
                    parley_tasks::PlanError::Decided => "This plan was already decided".to_owned(),
                    parley_tasks::PlanError::Expired => "This plan expired".to_owned(),
                    parley_tasks::PlanError::Conflict(_) => {
                        "A task changed since the plan was made; nothing was changed".to_owned()
                    }
                    parley_tasks::PlanError::Store(_) => "The database is unavailable; try again".to_owned(),
                };
                items::error_event(&message, false)
            }
        }
    }

    /// Streams the reply to the user message `stored` of `id`, after
    /// `created` (a new thread) and the stored message.
    fn reply(
        &self,
        owner: UserId,
        id: ConversationId,
        created: Option<Value>,
        stored: Option<&Message>,
    ) -> BoxStream<'static, Value> {
        let thread_id = id.to_string();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
        if let Some(created) = created {
            let _ = tx.send(created);
        }
        for item in stored.iter().flat_map(|stored| items::items_of(&thread_id, stored)) {
            let _ = tx.send(json!({"type": "thread.item.done", "item": item}));
        }
        let _ = tx.send(items::stream_options());
        let assistant = self.assistant.clone();
        let mut draining = self.draining.clone();
        let stop = Box::pin(async move { draining.started().await });
        let reply_id = MessageId::new();
        tokio::spawn(async move {
            let mut replay = items::Replay::new(thread_id, reply_id.to_string());
            let mut forward = |event: AssistantEvent| {
                let mut out = Vec::new();
                match event {
                    AssistantEvent::Delta(delta) => replay.delta(&delta, &mut out),
                    AssistantEvent::ToolCall(call) => replay.tool_call(&call, &mut out),
                    AssistantEvent::Approval(plan) => replay.approval(&plan, &mut out),
                }
                for event in out {
                    let _ = tx.send(event);
                }
            };
            let result = assistant
                .reply_as(owner, id, reply_id, parley_tasks::Origin::ChatkitProtocol, &mut forward, stop)
                .await;
            let mut out = Vec::new();
            replay.finish(&mut out);
            if let Err(error) = result {
                let api = Surface::Chat.assistant_error(error, &id.to_string());
                out.push(items::error_event(&api.message, true));
            }
            for event in out {
                let _ = tx.send(event);
            }
        });
        stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|event| (event, rx)) }).boxed()
    }
}

/// Every item of the thread's messages, oldest first.
fn thread_items(detail: &ConversationDetail) -> Vec<Value> {
    let thread_id = detail.conversation.id.to_string();
    detail.messages.iter().flat_map(|message| items::items_of(&thread_id, message)).collect()
}

/// A `Page` of `items` (oldest first) in `order`, starting after the item
/// `after` (an unknown one: an empty page).
fn paginate(mut items: Vec<Value>, order: Order, after: Option<&str>, limit: usize) -> Value {
    if order == Order::Desc {
        items.reverse();
    }
    let start = match after {
        Some(after) => items.iter().position(|item| item["id"] == after).map_or(items.len(), |index| index + 1),
        None => 0,
    };
    let rest: Vec<Value> = items.into_iter().skip(start).collect();
    let has_more = rest.len() > limit;
    let shown: Vec<Value> = rest.into_iter().take(limit).collect();
    let after = shown.last().and_then(|item| item["id"].as_str()).map(str::to_owned);
    items::page(shown, has_more, after)
}
