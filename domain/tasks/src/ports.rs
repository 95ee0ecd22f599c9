//! The task repository port.

use async_trait::async_trait;
use parley_kernel::{Page, PageRequest, StoreError, TaskId, Timestamp, UserId};

use crate::{Attribution, Decision, Plan, PlanError, RevertError, Revision, Task, TaskChange};

/// Why a task operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("task not found")]
    NotFound,
    #[error("task belongs to another user")]
    Forbidden,
    /// The change named a version that is no longer the task's; nothing was changed.
    #[error("task changed since version {expected}")]
    Stale { expected: u32, current: Box<Task> },
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

/// How a change is made: by whom, when, and (optionally) only if the task
/// is still at a given version. The owner is `by.user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub by: Attribution,
    pub at: Timestamp,
    /// `If-Match`, or the version the model read: a task at another version is `Stale`.
    pub if_version: Option<u32>,
}

/// Stores and retrieves each user's tasks. Every method is scoped by owner.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait TaskRepository: Send + Sync {
    /// Stores a new task (its `owner` is set by the caller) and its
    /// `created` revision, in one transaction.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn create(&self, task: &Task, by: &Attribution) -> Result<(), StoreError>;

    /// # Errors
    /// - `TaskError::NotFound` if no task has this id;
    /// - `TaskError::Forbidden` if it exists but belongs to another user.
    async fn get(&self, owner: UserId, id: TaskId) -> Result<Task, TaskError>;

    /// The owner's tasks matching `filter`, newest first (`created_at`, then id).
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn list(&self, owner: UserId, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>, StoreError>;

    /// Applies `change` for `edit.by.user` atomically (no lost update
    /// between two concurrent changes), records its revision in the same
    /// transaction, and returns the task as stored.
    ///
    /// # Errors
    /// `NotFound` / `Forbidden` as for `get`; `Stale` when `edit.if_version` is not the task's.
    async fn update(&self, id: TaskId, change: TaskChange, edit: &Edit) -> Result<Task, TaskError>;

    /// Deletes the task and records its revision in one transaction; returns the task as it was.
    ///
    /// # Errors
    /// As for `update`.
    async fn delete(&self, id: TaskId, edit: &Edit) -> Result<Task, TaskError>;

    /// The task's revisions, newest first; also after it was deleted.
    ///
    /// # Errors
    /// `NotFound` when no task and no revision has this id, `Forbidden` when they are another user's.
    async fn revisions(&self, owner: UserId, id: TaskId, page: &PageRequest) -> Result<Page<Revision>, TaskError>;

    /// Undoes every change `tool_call` made to `edit.by.user`'s tasks in one
    /// transaction, recording the undo's own revisions; returns the tasks it touched.
    ///
    /// # Errors
    /// `NotFound`, `AlreadyReverted`, or `Conflict` naming tasks changed since (nothing changed).
    async fn revert(&self, tool_call: &str, edit: &Edit) -> Result<Vec<TaskId>, RevertError>;

    /// Stores a pending plan.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn save_plan(&self, plan: &Plan) -> Result<(), StoreError>;

    /// Decides the owner's pending plan at `now`: approving applies every
    /// change in one transaction (each recorded as its tool call's, by the
    /// assistant), or none; rejecting drops it. Returns the plan as decided.
    ///
    /// # Errors
    /// `NotFound`, `Decided`, `Expired`, or `Conflict` naming tasks changed since the plan.
    async fn decide_plan(
        &self,
        owner: UserId,
        id: uuid::Uuid,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Plan, PlanError>;

    /// Which of `tool_calls` the owner already reverted.
    ///
    /// # Errors
    /// `StoreError` if the store fails.
    async fn reverted(&self, owner: UserId, tool_calls: &[String]) -> Result<Vec<String>, StoreError>;
}
