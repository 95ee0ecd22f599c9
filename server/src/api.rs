//! The OpenAPI operations, one `#[OpenApi]` struct per area.

pub mod auth;
pub mod chat;
pub mod chatkit;
pub mod chatkit_protocol;
pub mod conversations;
pub mod edits;
pub mod health;
pub mod schema;
pub mod sessions;
pub mod tasks;

/// Tags grouping the operations in the generated document.
#[derive(poem_openapi::Tags)]
pub enum ApiTags {
    /// Service health
    Health,
    /// Registration, login and the current user
    Auth,
    /// Each user's to-do list
    Tasks,
    /// Chat with the task assistant, and its stored conversations
    Chat,
    /// ChatKit REST: conversations as sessions, replies over Server-Sent Events
    ChatKit,
    /// Séance sessions: multi-user rooms with an AI spirit (live part over WebSocket)
    Sessions,
}
