//! Conversations domain: stored assistant conversations and the language model port.
#![doc = include_str!("../README.md")]

mod conversation;
mod feedback;
mod model;
mod ports;

pub use conversation::{
    Conversation, ConversationDetail, ConversationSummary, ConversationTitle, Message, MessageText, MessageTextError,
    Role, ToolCall, ToolStatus,
};
pub use feedback::FeedbackKind;
pub use model::{ChatTurn, LanguageModel, ModelError, ModelEvent, ModelStream, ToolRequest, ToolSpec};
pub use ports::{ConversationError, ConversationRepository};

#[cfg(feature = "mock")]
pub use model::MockLanguageModel;
#[cfg(feature = "mock")]
pub use ports::MockConversationRepository;
