//! The conversation repository port.

use async_trait::async_trait;
use parley_kernel::{ConversationId, MessageId, Page, PageRequest, StoreError, Timestamp, UserId};

use crate::{Conversation, ConversationDetail, ConversationSummary, ConversationTitle, FeedbackKind, Message};

/// Why a conversation operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    #[error("conversation not found")]
    NotFound,
    #[error("conversation belongs to another user")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stores each user's conversations and their messages. Scoped by owner.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ConversationRepository: Send + Sync {
    /// Stores a new, empty conversation.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn create(&self, conversation: &Conversation) -> Result<(), StoreError>;

    /// The owner's conversations, most recently updated first, with message counts.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn list(&self, owner: UserId, page: &PageRequest) -> Result<Page<ConversationSummary>, StoreError>;

    /// A conversation with at most its `recent` most recent messages,
    /// oldest first among them, reading no more than that.
    ///
    /// # Errors
    /// - `ConversationError::NotFound` if no conversation has this id;
    /// - `ConversationError::Forbidden` if it belongs to another user.
    async fn get(
        &self,
        owner: UserId,
        id: ConversationId,
        recent: usize,
    ) -> Result<ConversationDetail, ConversationError>;

    /// The history a turn sends the model again: the most recent messages,
    /// oldest first among them, taken newest first (the newest always) while
    /// the [`Message::context_chars`] of the messages taken before stay
    /// under `chars`, and at most `max`: the last one may not fit, the
    /// caller decides. `has_more_messages` says whether older messages were
    /// left unread. Reads no message past that.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`.
    async fn history(
        &self,
        owner: UserId,
        id: ConversationId,
        max: usize,
        chars: usize,
    ) -> Result<ConversationDetail, ConversationError>;

    /// A page of the conversation's whole history, oldest first.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`.
    async fn messages(
        &self,
        owner: UserId,
        id: ConversationId,
        page: &PageRequest,
    ) -> Result<Page<Message>, ConversationError>;

    /// Appends `message` and sets the conversation's `updated_at` to the
    /// message's `created_at`, in one transaction.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`.
    async fn append(&self, owner: UserId, id: ConversationId, message: &Message) -> Result<(), ConversationError>;

    /// Gives the conversation a new title (its `updated_at` stays).
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`.
    async fn rename(
        &self,
        owner: UserId,
        id: ConversationId,
        title: &ConversationTitle,
    ) -> Result<(), ConversationError>;

    /// Deletes the messages that come after the message `after` (in
    /// `created_at`, id order), in one transaction: a reply to be made again.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`; `NotFound` too when `after` is
    /// not a message of this conversation.
    async fn delete_after(&self, owner: UserId, id: ConversationId, after: MessageId) -> Result<(), ConversationError>;

    /// Stores `kind` as the feedback on each of `items` (item ids of this
    /// conversation), replacing earlier feedback on them, in one transaction.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`.
    async fn set_feedback(
        &self,
        owner: UserId,
        id: ConversationId,
        items: &[String],
        kind: FeedbackKind,
        at: Timestamp,
    ) -> Result<(), ConversationError>;

    /// The feedback stored on the conversation's items, by item id.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`.
    async fn feedback(
        &self,
        owner: UserId,
        id: ConversationId,
    ) -> Result<Vec<(String, FeedbackKind)>, ConversationError>;

    /// Deletes the conversation and all its messages, in one transaction.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`.
    async fn delete(&self, owner: UserId, id: ConversationId) -> Result<(), ConversationError>;
}
