//! The assistant: stores the user's message, runs the model's tool loop as
//! the caller, and stores the reply with the tool calls it made.

mod limits;
mod protocol;
mod tools;
pub mod vocabulary;

use std::sync::Arc;

use futures_util::future::{self, BoxFuture};
use futures_util::{FutureExt, StreamExt};
use parley_conversations::{
    ChatTurn, Conversation, ConversationDetail, ConversationError, ConversationRepository, ConversationSummary,
    ConversationTitle, LanguageModel, Message, MessageText, ModelError, ModelEvent, Role, ToolCall, ToolRequest,
    ToolStatus,
};
use parley_kernel::{Clock, ConversationId, MessageId, Page, PageRequest, StoreError, UserId};
use parley_tasks::{Attribution, Decision, Origin, Plan, PlanError, PlannedChange};

use crate::{TaskService, Timer};

use limits::Cutoff;
pub use limits::{ReplyCut, ReplyLimits};
pub use tools::tool_specs;

/// At most this many model turns per reply.
pub const MAX_ROUNDS: usize = 5;

/// Messages a conversation's read returns: the most recent, oldest first
/// among them (API.md); the rest is paged by `messages`.
pub const DETAIL_MESSAGES: usize = 100;

/// Messages read from the store for a turn's history, at most: the model
/// sees at most these, however short, and only as many as fit the context
/// budget, so a long conversation costs what a short one does. A message
/// carries its own tool calls and their results, so they stay together.
pub const HISTORY_MESSAGES: usize = 200;

const SYSTEM_PROMPT: &str = "You are Parley, a concise assistant that manages the user's to-do list. \
Use the tools to add, list, complete, update and delete tasks; look tasks up with list_tasks \
when you need an id. Answer in one or two short sentences.";

/// Something the reply produced, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssistantEvent {
    /// More reply text from the model.
    Delta(String),
    /// A tool ran (or was held for approval); its call and outcome.
    ToolCall(ToolCall),
    /// Changes wait for the user's approval; the reply ends after this.
    Approval(Plan),
}

#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Cut(#[from] ReplyCut),
}

impl From<StoreError> for AssistantError {
    fn from(error: StoreError) -> Self {
        Self::Conversation(ConversationError::Store(error))
    }
}

pub struct AssistantService {
    conversations: Arc<dyn ConversationRepository>,
    tasks: Arc<TaskService>,
    model: Arc<dyn LanguageModel>,
    clock: Arc<dyn Clock>,
    limits: ReplyLimits,
    /// Measures the reply deadline.
    timer: Arc<dyn Timer>,
}

impl AssistantService {
    pub fn new(
        conversations: Arc<dyn ConversationRepository>,
        tasks: Arc<TaskService>,
        model: Arc<dyn LanguageModel>,
        clock: Arc<dyn Clock>,
        limits: ReplyLimits,
        timer: Arc<dyn Timer>,
    ) -> Self {
        Self { conversations, tasks, model, clock, limits, timer }
    }

    /// Creates a conversation titled from its first message.
    ///
    /// # Errors
    /// A store failure.
    pub async fn create_conversation(
        &self,
        owner: UserId,
        title: ConversationTitle,
    ) -> Result<Conversation, AssistantError> {
        let now = self.clock.now();
        let conversation = Conversation { id: ConversationId::new(), owner, title, created_at: now, updated_at: now };
        self.conversations.create(&conversation).await?;
        Ok(conversation)
    }

    /// The owner's conversations, most recently updated first.
    ///
    /// # Errors
    /// A store failure.
    pub async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<ConversationSummary>, StoreError> {
        self.conversations.list(owner, page).await
    }

    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    pub async fn get(&self, owner: UserId, id: ConversationId) -> Result<ConversationDetail, ConversationError> {
        self.conversations.get(owner, id, DETAIL_MESSAGES).await
    }

    /// A page of a conversation's whole history, oldest first.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` for an unknown or foreign conversation.
    pub async fn messages(
        &self,
        owner: UserId,
        id: ConversationId,
        page: &PageRequest,
    ) -> Result<Page<Message>, ConversationError> {
        self.conversations.messages(owner, id, page).await
    }

    /// Which of the tool calls in `messages` the owner already reverted.
    ///
    /// # Errors
    /// A store failure.
    pub async fn reverted_calls(
        &self,
        owner: UserId,
        messages: &[Message],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let ids: Vec<String> = messages
            .iter()
            .flat_map(|m| &m.tool_calls)
            .filter(|call| changed_tasks(call))
            .map(|call| call.id.clone())
            .collect();
        Ok(self.tasks.reverted(owner, &ids).await?.into_iter().collect())
    }

    /// Deletes the conversation with its messages; tasks it made stay.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    pub async fn delete(&self, owner: UserId, id: ConversationId) -> Result<(), ConversationError> {
        self.conversations.delete(owner, id).await
    }

    /// Stores the user's message in `conversation` (a new one when `None`),
    /// before any model call, so a model failure loses nothing.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` for someone else's or an unknown conversation, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %owner))]
    pub async fn say(
        &self,
        owner: UserId,
        conversation: Option<ConversationId>,
        text: MessageText,
    ) -> Result<(ConversationId, Message), AssistantError> {
        let id = match conversation {
            Some(id) => id,
            None => self.create_conversation(owner, ConversationTitle::from_first_message(&text)).await?.id,
        };
        let message = self.message(Role::User, text.as_str().to_owned(), Vec::new());
        self.conversations.append(owner, id, &message).await?;
        Ok((id, message))
    }

    /// Runs the model over the conversation, executing its tool calls as
    /// `owner` (their changes attributed to the assistant, through `origin`),
    /// reporting each step to `on_event`, and stores the reply.
    ///
    /// # Errors
    /// As [`Self::reply_until`].
    pub async fn reply(
        &self,
        owner: UserId,
        id: ConversationId,
        origin: Origin,
        on_event: &mut (dyn FnMut(AssistantEvent) + Send),
    ) -> Result<Message, AssistantError> {
        self.reply_until(owner, id, origin, on_event, future::pending().boxed()).await
    }

    /// [`Self::reply`] that also ends when `stop` resolves (the server is
    /// shutting down).
    ///
    /// The reply is bounded by the service's [`ReplyLimits`]. When it ends
    /// early (the model failed, a cap was passed, the deadline or `stop`
    /// came) whatever it produced so far, text and tool calls, is stored
    /// before the error is returned; the user's message always stays.
    ///
    /// # Errors
    /// `Model` when the model failed, `Cut` when the reply was cut short, or
    /// a conversation/store failure.
    pub async fn reply_until(
        &self,
        owner: UserId,
        id: ConversationId,
        origin: Origin,
        on_event: &mut (dyn FnMut(AssistantEvent) + Send),
        stop: BoxFuture<'static, ()>,
    ) -> Result<Message, AssistantError> {
        self.reply_as(owner, id, MessageId::new(), origin, on_event, stop).await
    }

    /// [`Self::reply_until`] storing the reply under `reply_id`, so that a
    /// caller can name the reply before it is stored (the ChatKit protocol
    /// streams its items under their stored ids).
    ///
    /// # Errors
    /// As [`Self::reply_until`].
    #[tracing::instrument(skip_all, fields(owner = %owner, conversation = %id))]
    pub async fn reply_as(
        &self,
        owner: UserId,
        id: ConversationId,
        reply_id: MessageId,
        origin: Origin,
        on_event: &mut (dyn FnMut(AssistantEvent) + Send),
        stop: BoxFuture<'static, ()>,
    ) -> Result<Message, AssistantError> {
        let mut cutoff = Cutoff::new(self.timer.sleep(self.limits.reply_timeout), stop);
        let budget = self.limits.context_chars;
        let recent = self.conversations.history(owner, id, HISTORY_MESSAGES, history_room(budget)).await?;
        let history = context(recent.messages, recent.has_more_messages, budget);
        let mut draft = Draft::default();
        let door = Door { owner, conversation: id, origin };
        let outcome = self.rounds(&door, history, &mut draft, &mut cutoff, on_event).await;
        let failure = match outcome {
            Ok(()) => None,
            Err(error) if draft.content.is_empty() && draft.calls.is_empty() => return Err(error),
            Err(error) => {
                tracing::warn!(error = %error, "assistant reply ended early; storing what it produced");
                Some(error)
            }
        };
        let mut message = self.message(Role::Assistant, draft.content, draft.calls);
        message.id = reply_id;
        let stored = self.conversations.append(owner, id, &message).await;
        match failure {
            None => stored.map(|()| message).map_err(Into::into),
            Some(error) => {
                if let Err(store) = stored {
                    tracing::error!(error = %store, "could not store the partial reply");
                }
                Err(error)
            }
        }
    }

    /// The tool loop; `draft` holds what the reply produced, even on error.
    async fn rounds(
        &self,
        door: &Door,
        mut history: Vec<ChatTurn>,
        draft: &mut Draft,
        cutoff: &mut Cutoff,
        on_event: &mut (dyn FnMut(AssistantEvent) + Send),
    ) -> Result<(), AssistantError> {
        let limits = &self.limits;
        let mut refused = false;
        for _ in 0..MAX_ROUNDS {
            if let Some(cut) = cutoff.check() {
                return Err(cut.into());
            }
            let (text, requests) = self.model_turn(&history, draft, cutoff, on_event).await?;
            if requests.is_empty() {
                return Ok(());
            }
            // Parley's own ids: a model's may repeat across replies, and a
            // tool call is addressed by its id (revert, revisions).
            let requests: Vec<ToolRequest> = requests
                .into_iter()
                .map(|request| ToolRequest { id: format!("call_{}", uuid::Uuid::now_v7().simple()), ..request })
                .collect();
            // A model told its budget is spent that still asks for tools ends the reply.
            let insisted = refused;
            let mut too_long = false;
            history.push(ChatTurn::Assistant { content: text, tool_calls: requests.clone() });
            let mut held = Vec::new();
            for request in requests {
                let by = Attribution::assistant(door.owner, door.origin, door.conversation, request.id.clone());
                let writes = tools::writes(&request.name);
                let call = if request.arguments.len() > limits.max_argument_bytes {
                    too_long = true;
                    let message = format!("arguments over {} bytes; the call did not run", limits.max_argument_bytes);
                    tools::refused(&request, "ARGUMENTS_TOO_LONG", &message, limits.max_argument_bytes)
                } else if draft.ran >= limits.max_tool_calls {
                    refused = true;
                    let message = format!(
                        "this reply already ran its {} tool calls; the call did not run. \
                         Answer the user with what you have.",
                        limits.max_tool_calls
                    );
                    tools::refused(&request, "TOOL_CALL_LIMIT", &message, limits.max_argument_bytes)
                } else if writes && limits.approval.holds(&request.name, draft.changed + held.len()) {
                    draft.ran += 1;
                    match tools::preview(&self.tasks, &by, &request).await {
                        Ok((before, after)) => {
                            let plan = *draft.plan.get_or_insert_with(uuid::Uuid::now_v7);
                            held.push(PlannedChange {
                                tool_call_id: request.id.clone(),
                                name: request.name.clone(),
                                arguments: request.arguments.clone(),
                                before,
                                after,
                            });
                            ToolCall {
                                id: request.id.clone(),
                                name: request.name.clone(),
                                arguments: request.arguments.clone(),
                                result: Some(serde_json::json!({"status": "pending_approval", "plan_id": plan})),
                                status: ToolStatus::Ok,
                            }
                        }
                        Err(call) => call,
                    }
                } else {
                    draft.ran += 1;
                    let call = tools::run(&self.tasks, &by, &request).await;
                    if writes && call.status == ToolStatus::Ok {
                        draft.changed += 1;
                    }
                    call
                };
                history.push(ChatTurn::Tool { call_id: call.id.clone(), content: call.result_text() });
                on_event(AssistantEvent::ToolCall(call.clone()));
                draft.calls.push(call);
            }
            if !held.is_empty() {
                let mut plan = Plan::new(door.owner, door.conversation, door.origin, held, self.clock.now());
                plan.id = draft.plan.unwrap_or(plan.id);
                self.tasks.propose(&plan).await?;
                if draft.content.is_empty() {
                    draft.content = waiting_note(&plan);
                }
                on_event(AssistantEvent::Approval(plan));
                return Ok(());
            }
            if too_long {
                return Err(ReplyCut::Arguments.into());
            }
            if insisted {
                return Err(ReplyCut::ToolCalls.into());
            }
        }
        Ok(())
    }

    /// Approves or rejects the owner's plan and records the outcome in its
    /// conversation, so the model sees it on the next turn.
    ///
    /// # Errors
    /// `NotFound`, `Decided`, `Expired`, `Conflict`, or a store failure.
    pub async fn decide(&self, owner: UserId, plan: uuid::Uuid, decision: Decision) -> Result<Plan, PlanError> {
        let decided = self.tasks.decide(owner, plan, decision).await?;
        let what = describe(&decided.changes);
        let text = match decision {
            Decision::Approve => format!("Approved and done: {what}."),
            Decision::Reject => format!("Rejected, nothing was changed: {what}."),
        };
        let note = self.message(Role::Assistant, text, Vec::new());
        if let Err(error) = self.conversations.append(owner, decided.conversation, &note).await {
            // The decision stands; a deleted conversation just has no record of it.
            tracing::warn!(error = %error, "could not record the plan's outcome in its conversation");
        }
        Ok(decided)
    }

    /// One model turn: its text (also appended to `draft`, up to the cap) and tool requests.
    async fn model_turn(
        &self,
        history: &[ChatTurn],
        draft: &mut Draft,
        cutoff: &mut Cutoff,
        on_event: &mut (dyn FnMut(AssistantEvent) + Send),
    ) -> Result<(String, Vec<ToolRequest>), AssistantError> {
        let mut stream = cutoff.race(self.model.stream(history, tool_specs())).await??;
        let mut text = String::new();
        let mut requests = Vec::new();
        while let Some(event) = cutoff.race(stream.next()).await? {
            match event? {
                ModelEvent::TextDelta(delta) => {
                    let room = self.limits.max_reply_chars.saturating_sub(draft.chars);
                    let length = delta.chars().count();
                    let kept = if length > room { delta.chars().take(room).collect() } else { delta };
                    draft.chars += length.min(room);
                    text.push_str(&kept);
                    draft.content.push_str(&kept);
                    if !kept.is_empty() {
                        on_event(AssistantEvent::Delta(kept));
                    }
                    if length > room {
                        return Err(ReplyCut::Length.into());
                    }
                }
                ModelEvent::ToolCall(request) => requests.push(request),
            }
        }
        Ok((text, requests))
    }

    fn message(&self, role: Role, content: String, tool_calls: Vec<ToolCall>) -> Message {
        Message { id: MessageId::new(), role, content, tool_calls, created_at: self.clock.now() }
    }
}

/// Whether `call` changed tasks (so that undoing it can mean something).
#[must_use]
pub fn changed_tasks(call: &ToolCall) -> bool {
    call.status == ToolStatus::Ok
        && tools::writes(&call.name)
        && call.result.as_ref().and_then(|r| r.get("status")).and_then(serde_json::Value::as_str)
            != Some("pending_approval")
}

/// Said to the model when older messages did not fit the context budget.
const LEFT_OUT_NOTE: &str = "\n\nEarlier messages of this conversation were left out to save space; \
if you need something from them, ask the user.";

/// What the history of a turn may take of `budget` characters: what the
/// system prompt and the left-out note leave.
fn history_room(budget: usize) -> usize {
    budget.saturating_sub(SYSTEM_PROMPT.chars().count() + LEFT_OUT_NOTE.chars().count())
}

/// The system prompt and the most recent messages that fit in `budget`
/// characters (the prompt included), measured by
/// [`Message::context_chars`]. A message's tool calls stay with their
/// results; the newest message is always sent. `earlier`: older messages
/// exist that `messages` does not hold, so the note is due whatever fits.
fn context(messages: Vec<Message>, earlier: bool, budget: usize) -> Vec<ChatTurn> {
    let mut room = history_room(budget);
    let total = messages.len();
    // The oldest message kept: walk back from the newest while they fit.
    let mut from = total;
    for message in messages.iter().rev() {
        let size = message.context_chars();
        if size > room && from < total {
            break;
        }
        room = room.saturating_sub(size);
        from -= 1;
    }
    let mut prompt = SYSTEM_PROMPT.to_owned();
    if earlier || from > 0 {
        prompt.push_str(LEFT_OUT_NOTE);
    }
    // One vector, with room for the tool loop's turns: a turn per message
    // (more for tool calls), then an assistant turn and a result per round.
    let mut history = Vec::with_capacity(total - from + MAX_ROUNDS * 2 + 1);
    history.push(ChatTurn::System(prompt));
    for message in messages.into_iter().skip(from) {
        push_turns(&mut history, message);
    }
    history
}

/// A stored message as the model sees it again: the turn, then its tool results.
fn push_turns(history: &mut Vec<ChatTurn>, message: Message) {
    match message.role {
        Role::User => history.push(ChatTurn::User(message.content)),
        Role::Assistant if message.tool_calls.is_empty() => {
            history.push(ChatTurn::Assistant { content: message.content, tool_calls: Vec::new() });
        }
        Role::Assistant => {
            let results: Vec<ChatTurn> = message
                .tool_calls
                .iter()
                .map(|call| ChatTurn::Tool { call_id: call.id.clone(), content: call.result_text() })
                .collect();
            let requests = message
                .tool_calls
                .into_iter()
                .map(|call| ToolRequest { id: call.id, name: call.name, arguments: call.arguments })
                .collect();
            history.push(ChatTurn::Assistant { content: String::new(), tool_calls: requests });
            history.extend(results);
            if !message.content.is_empty() {
                history.push(ChatTurn::Assistant { content: message.content, tool_calls: Vec::new() });
            }
        }
    }
}

/// Whose reply this is, in which conversation, through which door.
struct Door {
    owner: UserId,
    conversation: ConversationId,
    origin: Origin,
}

/// `Delete "Buy milk", Add "Call Bob"`: the plan's changes in words.
fn describe(changes: &[PlannedChange]) -> String {
    changes.iter().map(PlannedChange::summary).collect::<Vec<_>>().join(", ")
}

/// The reply's text when the model said nothing before its changes were held.
fn waiting_note(plan: &Plan) -> String {
    format!("This needs your approval first: {}.", describe(&plan.changes))
}

/// What a reply has produced so far.
#[derive(Debug, Default)]
struct Draft {
    content: String,
    /// Characters in `content`.
    chars: usize,
    calls: Vec<ToolCall>,
    /// Tool calls that ran or were held (refused ones are not counted).
    ran: usize,
    /// Tasks changed by calls that ran.
    changed: usize,
    /// The id of the plan the held calls go into.
    plan: Option<uuid::Uuid>,
}

#[cfg(test)]
mod tests;
