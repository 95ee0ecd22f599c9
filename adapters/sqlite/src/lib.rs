//! Embedded SQLite adapters for Parley's repository ports.
#![doc = include_str!("../README.md")]

mod conversation_rows;
mod conversations;
mod rows;
mod schema;
mod session_rows;
mod sessions;
mod store;
mod task_rows;
mod tasks;
mod users;

pub use conversations::SqliteConversationRepository;
pub use sessions::SqliteSessionRepository;
pub use store::SqliteStore;
pub use tasks::SqliteTaskRepository;
pub use users::SqliteUserRepository;
