//! The task tools' vocabulary, defined once: their names, arguments and
//! results. `tools.rs` runs them through `TaskService`; the offline assistant
//! (`parley-llm`) speaks them; a real model sees them as the JSON schemas of
//! [`tool_specs`](super::tool_specs), which describe these same types.

use chrono::{DateTime, SecondsFormat, Utc};
use parley_tasks::Task;
use serde::{Deserialize, Serialize};

/// One of the five task tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskTool {
    AddTask,
    ListTasks,
    CompleteTask,
    UpdateTask,
    DeleteTask,
}

impl TaskTool {
    /// Every tool, in the order the model sees them.
    pub const ALL: [Self; 5] = [Self::AddTask, Self::ListTasks, Self::CompleteTask, Self::UpdateTask, Self::DeleteTask];

    /// The name a model calls it by.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::AddTask => "add_task",
            Self::ListTasks => "list_tasks",
            Self::CompleteTask => "complete_task",
            Self::UpdateTask => "update_task",
            Self::DeleteTask => "delete_task",
        }
    }

    /// The tool called `name`, if there is one.
    #[must_use]
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|tool| tool.name() == name)
    }

    /// Whether it changes tasks (and so can be reverted or held for approval).
    #[must_use]
    pub const fn writes(self) -> bool {
        !matches!(self, Self::ListTasks)
    }
}

/// `add_task` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddTask {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Which tasks `list_tasks` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListStatus {
    #[default]
    All,
    Pending,
    Completed,
}

impl ListStatus {
    /// The task filter's `completed` for this status.
    #[must_use]
    pub const fn completed(self) -> Option<bool> {
        match self {
            Self::All => None,
            Self::Pending => Some(false),
            Self::Completed => Some(true),
        }
    }
}

/// `list_tasks` arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ListTasks {
    #[serde(default)]
    pub status: Option<ListStatus>,
}

/// `complete_task` and `delete_task` arguments: a task and, optionally, the
/// version it was read at (a stale one changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRef {
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// `update_task` arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateTask {
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
}

/// A task as the tools' results show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskView {
    pub id: String,
    pub title: String,
    pub description: String,
    pub completed: bool,
    pub priority: String,
    pub due_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub completed_at: Option<String>,
    pub version: u32,
}

impl From<&Task> for TaskView {
    fn from(task: &Task) -> Self {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        Self {
            id: task.id.to_string(),
            title: task.title.as_str().to_owned(),
            description: task.description.as_str().to_owned(),
            completed: task.completed(),
            priority: task.priority.as_str().to_owned(),
            due_at: task.due_at.map(time),
            created_at: time(task.created_at),
            updated_at: time(task.updated_at),
            completed_at: task.completed_at.map(time),
            version: task.version,
        }
    }
}

/// The result of `add_task`, `complete_task` and `update_task`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    pub task: TaskView,
}

/// The result of `list_tasks`: at most 100 tasks, newest first, and how
/// many match (bounded as a list's `meta.total` is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskListResult {
    pub tasks: Vec<TaskView>,
    pub count: u64,
}

/// The result of `delete_task`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedResult {
    pub deleted: bool,
    pub id: String,
}

/// Why a tool call failed, as its result says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FailedResult {
    /// `{"error": {"code", "message"}}`.
    Error { error: ToolError },
    /// API.md: a stale write is `{"status": "error", "error": "conflict", "current": Task}`.
    Conflict { status: String, error: String, message: String, current: Box<TaskView> },
}

/// The `error` of a failed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolError {
    pub code: String,
    pub message: String,
}

impl FailedResult {
    /// The failure's code: `CONFLICT` for a stale write.
    #[must_use]
    pub fn code(&self) -> &str {
        match self {
            Self::Error { error } => &error.code,
            Self::Conflict { .. } => "CONFLICT",
        }
    }

    #[must_use]
    pub fn message(&self) -> &str {
        match self {
            Self::Error { error } => &error.message,
            Self::Conflict { message, .. } => message,
        }
    }
}
