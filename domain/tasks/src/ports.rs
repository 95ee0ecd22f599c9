//! The task repository port.

use async_trait::async_trait;
use parley_kernel::{Page, PageRequest, StoreError, TaskId, Timestamp, UserId};

use crate::{Task, TaskChange};

/// Why a task operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("task not found")]
    NotFound,
    #[error("task belongs to another user")]
    Forbidden,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which of a user's tasks to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub completed: Option<bool>,
    /// Case-insensitive substring of the title; `%`, `_` and `\` are literal.
    pub title_contains: Option<String>,
}

/// Stores and retrieves each user's tasks. Every method is scoped by owner.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TaskRepository: Send + Sync {
    /// Stores a new task (its `owner` is set by the caller).
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn create(&self, task: &Task) -> Result<(), StoreError>;

    /// # Errors
    /// - `TaskError::NotFound` if no task has this id;
    /// - `TaskError::Forbidden` if it exists but belongs to another user.
    async fn get(&self, owner: UserId, id: TaskId) -> Result<Task, TaskError>;

    /// The owner's tasks matching `filter`, newest first (`created_at`, then id).
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn list(&self, owner: UserId, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>, StoreError>;

    /// Applies `change` at `now` atomically (no lost update between two
    /// concurrent changes) and returns the task as stored.
    ///
    /// # Errors
    /// `TaskError::NotFound` / `TaskError::Forbidden` as for `get`.
    async fn update(&self, owner: UserId, id: TaskId, change: TaskChange, now: Timestamp) -> Result<Task, TaskError>;

    /// # Errors
    /// `TaskError::NotFound` / `TaskError::Forbidden` as for `get`.
    async fn delete(&self, owner: UserId, id: TaskId) -> Result<(), TaskError>;
}
