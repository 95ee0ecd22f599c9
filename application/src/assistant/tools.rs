//! The five task tools the model may call, run through `TaskService` as the caller.

use parley_conversations::{ToolCall, ToolRequest, ToolSpec, ToolStatus};
use parley_kernel::{PageRequest, TaskId, UserId};
use parley_tasks::{
    Attribution, NewTask, Priority, Task, TaskDescription, TaskError, TaskFilter, TaskPatch, TaskTitle,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::vocabulary::{
    AddTask, DeletedResult, ListTasks, TaskListResult, TaskRef, TaskResult, TaskTool, TaskView, UpdateTask,
};
use crate::TaskService;

/// The tools, with JSON-schema parameters, in the order the model sees them.
#[must_use]
pub fn tool_specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: TaskTool::AddTask.name(),
            description: "Add a task to the user's to-do list.",
            parameters: json!({"type": "object", "properties": {
                "title": {"type": "string", "description": "1 to 200 characters"},
                "description": {"type": "string", "description": "at most 1000 characters"}
            }, "required": ["title"], "additionalProperties": false}),
        },
        ToolSpec {
            name: TaskTool::ListTasks.name(),
            description: "List the user's tasks, newest first.",
            parameters: json!({"type": "object", "properties": {
                "status": {"type": "string", "enum": ["all", "pending", "completed"]}
            }, "required": ["status"], "additionalProperties": false}),
        },
        ToolSpec {
            name: TaskTool::CompleteTask.name(),
            description: "Mark one of the user's tasks as completed.",
            parameters: id_only(),
        },
        ToolSpec {
            name: TaskTool::UpdateTask.name(),
            description: "Change the title and/or description of one of the user's tasks.",
            parameters: json!({"type": "object", "properties": {
                "task_id": {"type": "string", "format": "uuid"},
                "title": {"type": "string"},
                "description": {"type": "string"},
                "version": version_spec()
            }, "required": ["task_id"], "additionalProperties": false}),
        },
        ToolSpec {
            name: TaskTool::DeleteTask.name(),
            description: "Delete one of the user's tasks.",
            parameters: id_only(),
        },
    ]
}

fn id_only() -> Value {
    json!({"type": "object", "properties": {"task_id": {"type": "string", "format": "uuid"}, "version": version_spec()},
           "required": ["task_id"], "additionalProperties": false})
}

fn version_spec() -> Value {
    json!({"type": "integer", "minimum": 1,
           "description": "the task's version as list_tasks showed it; if the task changed since, nothing is changed"})
}

/// Whether the tool called `name` changes tasks (and so can be reverted or held for approval).
pub fn writes(name: &str) -> bool {
    TaskTool::named(name).is_some_and(TaskTool::writes)
}

impl AddTask {
    /// The task these arguments describe; `run` and `preview` both read them so.
    fn parse(&self) -> Result<NewTask, Failure> {
        Ok(NewTask {
            title: TaskTitle::parse(&self.title).map_err(|e| invalid(format!("title {e}")))?,
            description: TaskDescription::parse(self.description.as_deref().unwrap_or_default())
                .map_err(|e| invalid(format!("description {e}")))?,
            priority: Priority::default(),
            due_at: None,
        })
    }
}

impl UpdateTask {
    /// The change these arguments describe.
    fn parse(&self) -> Result<TaskPatch, Failure> {
        Ok(TaskPatch {
            title: self
                .title
                .as_deref()
                .map(TaskTitle::parse)
                .transpose()
                .map_err(|e| invalid(format!("title {e}")))?,
            description: self
                .description
                .as_deref()
                .map(TaskDescription::parse)
                .transpose()
                .map_err(|e| invalid(format!("description {e}")))?,
            ..TaskPatch::default()
        })
    }
}

/// A tool failure the model sees as the tool's result.
struct Failure {
    code: &'static str,
    message: String,
    /// The task as it is now, when the call named a stale version.
    current: Option<Box<Task>>,
}

impl Failure {
    fn new(code: &'static str, message: impl ToString) -> Self {
        Self { code, message: message.to_string(), current: None }
    }

    fn result(self) -> Value {
        match self.current {
            // API.md: a stale write is `{"status": "error", "error": "conflict", "current": Task}`.
            Some(task) => json!({"status": "error", "error": "conflict", "message": self.message,
                                 "current": TaskView::from(&*task)}),
            None => json!({"error": {"code": self.code, "message": self.message}}),
        }
    }
}

fn invalid(message: impl ToString) -> Failure {
    Failure::new("INVALID_ARGUMENTS", message)
}

impl From<TaskError> for Failure {
    fn from(error: TaskError) -> Self {
        match error {
            TaskError::NotFound => Self::new("TASK_NOT_FOUND", "no task has this id"),
            TaskError::Forbidden => Self::new("FORBIDDEN", "this task belongs to someone else"),
            TaskError::Stale { current, .. } => Self {
                current: Some(current),
                ..Self::new("CONFLICT", "the task changed since you read it; nothing was changed")
            },
            TaskError::Store(_) => Self::new("UNAVAILABLE", "the task store failed; try again"),
        }
    }
}

impl From<parley_kernel::StoreError> for Failure {
    fn from(error: parley_kernel::StoreError) -> Self {
        TaskError::Store(error).into()
    }
}

/// Runs `request` for `by.user`; any failure becomes an `error` result, never an error of the reply.
pub async fn run(tasks: &TaskService, by: &Attribution, request: &ToolRequest) -> ToolCall {
    let (result, status) = match dispatch(tasks, by, request).await {
        Ok(result) => (result, ToolStatus::Ok),
        Err(failure) => (failure.result(), ToolStatus::Error),
    };
    ToolCall {
        id: request.id.clone(),
        name: request.name.clone(),
        arguments: request.arguments.clone(),
        result: Some(result),
        status,
    }
}

/// `request` answered with an error result without running it; its
/// arguments cut to at most `max_argument_bytes`.
pub fn refused(request: &ToolRequest, code: &'static str, message: &str, max_argument_bytes: usize) -> ToolCall {
    let mut end = request.arguments.len().min(max_argument_bytes);
    while !request.arguments.is_char_boundary(end) {
        end -= 1;
    }
    ToolCall {
        id: request.id.clone(),
        name: request.name.clone(),
        arguments: request.arguments[..end].to_owned(),
        result: Some(json!({"error": {"code": code, "message": message}})),
        status: ToolStatus::Error,
    }
}

/// What `request` would change if it ran now, without running it: the task
/// before and after (for a plan awaiting approval). A failure is the call's
/// error result, as if it had run.
pub async fn preview(
    tasks: &TaskService,
    by: &Attribution,
    request: &ToolRequest,
) -> Result<(Option<Task>, Option<Task>), ToolCall> {
    let fail = |failure: Failure| ToolCall {
        id: request.id.clone(),
        name: request.name.clone(),
        arguments: request.arguments.clone(),
        result: Some(failure.result()),
        status: ToolStatus::Error,
    };
    let now = tasks.now();
    let current = async |id: &str, version: Option<u32>| -> Result<Task, Failure> {
        let task = tasks.get(by.user, task_id(id)?).await?;
        match version {
            Some(expected) if expected != task.version => {
                Err(TaskError::Stale { expected, current: Box::new(task) }.into())
            }
            _ => Ok(task),
        }
    };
    let planned = async {
        match TaskTool::named(&request.name) {
            Some(TaskTool::AddTask) => {
                let a: AddTask = args(&request.arguments)?;
                Ok((None, Some(Task::create(by.user, a.parse()?, now))))
            }
            Some(TaskTool::CompleteTask) => {
                let a: TaskRef = args(&request.arguments)?;
                let before = current(&a.task_id, a.version).await?;
                let patch = TaskPatch { completed: Some(true), ..TaskPatch::default() };
                let after = before.clone().apply(parley_tasks::TaskChange::Patch(patch), now);
                Ok((Some(before), Some(after)))
            }
            Some(TaskTool::UpdateTask) => {
                let a: UpdateTask = args(&request.arguments)?;
                let before = current(&a.task_id, a.version).await?;
                let patch = a.parse()?;
                let after = before.clone().apply(parley_tasks::TaskChange::Patch(patch), now);
                Ok((Some(before), Some(after)))
            }
            Some(TaskTool::DeleteTask) => {
                let a: TaskRef = args(&request.arguments)?;
                Ok((Some(current(&a.task_id, a.version).await?), None))
            }
            Some(TaskTool::ListTasks) | None => Err(unknown(&request.name)),
        }
    };
    planned.await.map_err(fail)
}

fn args<T: for<'de> Deserialize<'de>>(raw: &str) -> Result<T, Failure> {
    let raw = if raw.trim().is_empty() { "{}" } else { raw };
    serde_json::from_str(raw).map_err(|e| invalid(format!("arguments do not fit the tool: {e}")))
}

fn task_id(raw: &str) -> Result<TaskId, Failure> {
    raw.trim().parse().map_err(|_| Failure::new("TASK_NOT_FOUND", format!("'{raw}' is not a task id")))
}

fn unknown(name: &str) -> Failure {
    Failure::new("UNKNOWN_TOOL", format!("there is no tool called '{name}'"))
}

fn result(value: impl serde::Serialize) -> Result<Value, Failure> {
    serde_json::to_value(value).map_err(|e| Failure::new("UNAVAILABLE", e))
}

async fn dispatch(tasks: &TaskService, by: &Attribution, request: &ToolRequest) -> Result<Value, Failure> {
    let owner: UserId = by.user;
    let task = |task: &Task| result(TaskResult { task: TaskView::from(task) });
    match TaskTool::named(&request.name).ok_or_else(|| unknown(&request.name))? {
        TaskTool::AddTask => {
            let a: AddTask = args(&request.arguments)?;
            task(&tasks.create(by, a.parse()?).await?)
        }
        TaskTool::ListTasks => {
            let a: ListTasks = args(&request.arguments)?;
            let filter = TaskFilter { completed: a.status.unwrap_or_default().completed(), title_contains: None };
            let page = PageRequest::new(Some(100), None).map_err(invalid)?;
            let listed = tasks.list(owner, &filter, &page).await?;
            result(TaskListResult { tasks: listed.items.iter().map(TaskView::from).collect(), count: listed.total })
        }
        TaskTool::CompleteTask => {
            let a: TaskRef = args(&request.arguments)?;
            let patch = TaskPatch { completed: Some(true), ..TaskPatch::default() };
            task(&tasks.update(by, task_id(&a.task_id)?, patch, a.version).await?)
        }
        TaskTool::UpdateTask => {
            let a: UpdateTask = args(&request.arguments)?;
            let id = task_id(&a.task_id)?;
            let patch = a.parse()?;
            task(&tasks.update(by, id, patch, a.version).await?)
        }
        TaskTool::DeleteTask => {
            let a: TaskRef = args(&request.arguments)?;
            let id = task_id(&a.task_id)?;
            tasks.delete(by, id, a.version).await?;
            result(DeletedResult { deleted: true, id: id.to_string() })
        }
    }
}
