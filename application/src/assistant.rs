//! The assistant: stores the user's message, runs the model's tool loop as
//! the caller, and stores the reply with the tool calls it made.

mod tools;

use std::sync::Arc;

use futures_util::StreamExt;
use parley_conversations::{
    ChatTurn, Conversation, ConversationDetail, ConversationError, ConversationRepository, ConversationSummary,
    ConversationTitle, LanguageModel, Message, MessageText, ModelError, ModelEvent, Role, ToolCall, ToolRequest,
};
use parley_kernel::{Clock, ConversationId, MessageId, Page, PageRequest, StoreError, UserId};

use crate::TaskService;

pub use tools::tool_specs;

/// At most this many model turns per reply.
pub const MAX_ROUNDS: usize = 5;

/// Messages a conversation's read returns: the most recent, oldest first
/// among them (API.md); the rest is paged by `messages`.
pub const DETAIL_MESSAGES: usize = 100;

/// Messages read from the store for a turn's history: the model sees at
/// most these, so a long conversation costs what a short one does. A
/// message carries its own tool calls and their results, so they stay
/// together.
pub const HISTORY_MESSAGES: usize = 200;

const SYSTEM_PROMPT: &str = "You are Parley, a concise assistant that manages the user's to-do list. \
Use the tools to add, list, complete, update and delete tasks; look tasks up with list_tasks \
when you need an id. Answer in one or two short sentences.";

/// Something the reply produced, reported as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssistantEvent {
    /// More reply text from the model.
    Delta(String),
    /// A tool ran; its call and outcome.
    ToolCall(ToolCall),
}

#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    #[error(transparent)]
    Conversation(#[from] ConversationError),
    #[error(transparent)]
    Model(#[from] ModelError),
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
}

impl AssistantService {
    pub fn new(
        conversations: Arc<dyn ConversationRepository>,
        tasks: Arc<TaskService>,
        model: Arc<dyn LanguageModel>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { conversations, tasks, model, clock }
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
    /// `owner`, reporting each step to `on_event`, and stores the reply.
    ///
    /// # Errors
    /// A model failure (the user's message stays stored) or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %owner, conversation = %id))]
    pub async fn reply(
        &self,
        owner: UserId,
        id: ConversationId,
        on_event: &mut (dyn FnMut(AssistantEvent) + Send),
    ) -> Result<Message, AssistantError> {
        let detail = self.conversations.get(owner, id, HISTORY_MESSAGES).await?;
        let mut history = vec![ChatTurn::System(SYSTEM_PROMPT.to_owned())];
        history.extend(detail.messages.iter().flat_map(turns_of));
        let mut content = String::new();
        let mut calls = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let (text, requests) = self.model_turn(history.clone(), on_event).await?;
            content.push_str(&text);
            if requests.is_empty() {
                break;
            }
            history.push(ChatTurn::Assistant { content: text, tool_calls: requests.clone() });
            for request in requests {
                let call = tools::run(&self.tasks, owner, &request).await;
                history.push(ChatTurn::Tool { call_id: call.id.clone(), content: result_text(&call) });
                on_event(AssistantEvent::ToolCall(call.clone()));
                calls.push(call);
            }
        }
        let message = self.message(Role::Assistant, content, calls);
        self.conversations.append(owner, id, &message).await?;
        Ok(message)
    }

    async fn model_turn(
        &self,
        history: Vec<ChatTurn>,
        on_event: &mut (dyn FnMut(AssistantEvent) + Send),
    ) -> Result<(String, Vec<ToolRequest>), ModelError> {
        let mut stream = self.model.stream(history, tool_specs()).await?;
        let mut text = String::new();
        let mut requests = Vec::new();
        while let Some(event) = stream.next().await {
            match event? {
                ModelEvent::TextDelta(delta) => {
                    text.push_str(&delta);
                    on_event(AssistantEvent::Delta(delta));
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

/// A stored message as the model sees it again: the turn, then its tool results.
fn turns_of(message: &Message) -> Vec<ChatTurn> {
    match message.role {
        Role::User => vec![ChatTurn::User(message.content.clone())],
        Role::Assistant if message.tool_calls.is_empty() => {
            vec![ChatTurn::Assistant { content: message.content.clone(), tool_calls: Vec::new() }]
        }
        Role::Assistant => {
            let requests = message
                .tool_calls
                .iter()
                .map(|call| ToolRequest {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                })
                .collect();
            let mut turns = vec![ChatTurn::Assistant { content: String::new(), tool_calls: requests }];
            turns.extend(
                message
                    .tool_calls
                    .iter()
                    .map(|call| ChatTurn::Tool { call_id: call.id.clone(), content: result_text(call) }),
            );
            if !message.content.is_empty() {
                turns.push(ChatTurn::Assistant { content: message.content.clone(), tool_calls: Vec::new() });
            }
            turns
        }
    }
}

fn result_text(call: &ToolCall) -> String {
    call.result.as_ref().map_or_else(|| "null".to_owned(), ToString::to_string)
}

#[cfg(test)]
mod tests;
