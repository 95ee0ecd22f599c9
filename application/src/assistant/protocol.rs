//! What the ChatKit server protocol needs beyond the other doors: a longer
//! read of a conversation's recent history and a rename.

use parley_conversations::{ConversationDetail, ConversationError, ConversationTitle, FeedbackKind};
use parley_kernel::{ConversationId, MessageId, UserId};

use super::AssistantService;

impl AssistantService {
    /// A conversation with at most its `recent` most recent messages, oldest first.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    pub async fn recent(
        &self,
        owner: UserId,
        id: ConversationId,
        recent: usize,
    ) -> Result<ConversationDetail, ConversationError> {
        self.conversations.get(owner, id, recent).await
    }

    /// Gives the conversation a new title; answers it with no messages.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    pub async fn rename(
        &self,
        owner: UserId,
        id: ConversationId,
        title: ConversationTitle,
    ) -> Result<ConversationDetail, ConversationError> {
        self.conversations.rename(owner, id, &title).await?;
        self.conversations.get(owner, id, 0).await
    }

    /// Deletes what came after the message `after`, so the reply to it can
    /// be made again (`threads.retry_after_item`).
    ///
    /// # Errors
    /// `NotFound` (the conversation, or `after` in it), `Forbidden`, or a store failure.
    pub async fn forget_after(
        &self,
        owner: UserId,
        id: ConversationId,
        after: MessageId,
    ) -> Result<(), ConversationError> {
        self.conversations.delete_after(owner, id, after).await
    }

    /// Stores the owner's feedback on items of the conversation.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    pub async fn give_feedback(
        &self,
        owner: UserId,
        id: ConversationId,
        items: &[String],
        kind: FeedbackKind,
    ) -> Result<(), ConversationError> {
        self.conversations.set_feedback(owner, id, items, kind, self.clock.now()).await
    }
}
