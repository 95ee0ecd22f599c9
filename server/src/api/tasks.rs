//! `/api/v1/tasks`: the caller's to-do list.

use std::sync::Arc;

use parley_application::TaskService;
use parley_kernel::{Cursor, PageRequest, TaskId};
use parley_tasks::{NewTask, Priority, Task, TaskDescription, TaskError, TaskFilter, TaskPatch, TaskTitle};
use poem_openapi::param::{Path, Query};
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};

use crate::api::ApiTags;
use crate::body::JsonBody;
use crate::envelope::{Deleted, Envelope, FieldError, PageEnvelope, Time, ok, page};
use crate::error::ApiError;
use crate::security::BearerAuth;

pub struct TasksApi {
    pub tasks: Arc<TaskService>,
}

#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum PriorityDto {
    Low,
    Medium,
    High,
}

impl From<PriorityDto> for Priority {
    fn from(p: PriorityDto) -> Self {
        match p {
            PriorityDto::Low => Self::Low,
            PriorityDto::Medium => Self::Medium,
            PriorityDto::High => Self::High,
        }
    }
}

impl From<Priority> for PriorityDto {
    fn from(p: Priority) -> Self {
        match p {
            Priority::Low => Self::Low,
            Priority::Medium => Self::Medium,
            Priority::High => Self::High,
        }
    }
}

#[derive(Debug, Object)]
pub struct TaskDto {
    pub id: String,
    pub title: String,
    pub description: String,
    pub completed: bool,
    pub priority: PriorityDto,
    pub due_at: Option<Time>,
    pub created_at: Time,
    pub updated_at: Time,
    pub completed_at: Option<Time>,
}

impl From<Task> for TaskDto {
    fn from(task: Task) -> Self {
        Self {
            id: task.id.to_string(),
            completed: task.completed(),
            title: task.title.to_string(),
            description: task.description.as_str().to_owned(),
            priority: task.priority.into(),
            due_at: task.due_at.map(Time),
            created_at: task.created_at.into(),
            updated_at: task.updated_at.into(),
            completed_at: task.completed_at.map(Time),
        }
    }
}

#[derive(Debug, Object)]
pub struct CreateTaskBody {
    /// 1 to 200 characters after trimming.
    pub title: String,
    /// At most 1000 characters; default empty.
    pub description: Option<String>,
    /// Default `medium`.
    pub priority: Option<PriorityDto>,
    pub due_at: Option<Time>,
}

/// Fields given replace the stored ones; `due_at: null` clears the due date.
#[derive(Debug, Object)]
pub struct UpdateTaskBody {
    pub title: Option<String>,
    pub description: Option<String>,
    pub priority: Option<PriorityDto>,
    pub due_at: MaybeUndefined<Time>,
    pub completed: Option<bool>,
}

#[derive(ApiResponse)]
pub enum TaskResponse {
    /// The task.
    #[oai(status = 200)]
    Ok(Json<Envelope<TaskDto>>),
}

#[derive(ApiResponse)]
pub enum CreateTaskResponse {
    /// The task was created.
    #[oai(status = 201)]
    Created(Json<Envelope<TaskDto>>),
}

#[derive(ApiResponse)]
pub enum TaskListResponse {
    /// A page of the caller's tasks, newest first.
    #[oai(status = 200)]
    Ok(Json<PageEnvelope<TaskDto>>),
}

#[derive(ApiResponse)]
pub enum DeleteTaskResponse {
    /// The task was deleted.
    #[oai(status = 200)]
    Ok(Json<Envelope<Deleted>>),
}

/// Collects every field error before answering.
#[derive(Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn check<T, E: ToString>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.0.push(FieldError { field: field.to_owned(), message: e.to_string() })).ok()
    }

    /// # Errors
    /// `VALIDATION_ERROR` naming every field recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::validation(self.0)) }
    }
}

impl TryFrom<CreateTaskBody> for NewTask {
    type Error = ApiError;

    fn try_from(body: CreateTaskBody) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let title = errors.check("title", TaskTitle::parse(&body.title));
        let description =
            errors.check("description", TaskDescription::parse(body.description.as_deref().unwrap_or_default()));
        errors.finish()?;
        match (title, description) {
            (Some(title), Some(description)) => Ok(Self {
                title,
                description,
                priority: body.priority.map(Priority::from).unwrap_or_default(),
                due_at: body.due_at.map(|t| t.0),
            }),
            _ => Err(ApiError::field("body", "invalid task")),
        }
    }
}

impl TryFrom<UpdateTaskBody> for TaskPatch {
    type Error = ApiError;

    fn try_from(body: UpdateTaskBody) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let title = body.title.map(|t| errors.check("title", TaskTitle::parse(&t)));
        let description = body.description.map(|d| errors.check("description", TaskDescription::parse(&d)));
        errors.finish()?;
        Ok(Self {
            title: title.flatten(),
            description: description.flatten(),
            priority: body.priority.map(Priority::from),
            due_at: match body.due_at {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(at) => Some(Some(at.0)),
            },
            completed: body.completed,
        })
    }
}

/// A malformed id in the path is simply a task that does not exist.
fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    raw.parse().map_err(|_| not_found(raw))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("TASK_NOT_FOUND", "Task", "task_id", id)
}

fn task_error(error: TaskError, id: &str) -> ApiError {
    match error {
        TaskError::NotFound => not_found(id),
        TaskError::Forbidden => ApiError::forbidden(),
        TaskError::Store(store) => crate::store_error(&store),
    }
}

/// Parses `limit` and `cursor` into a page request.
///
/// # Errors
/// `VALIDATION_ERROR` naming `limit` and/or `cursor`.
pub fn page_request(limit: Option<i64>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let mut errors = FieldErrors::default();
    let cursor = cursor.and_then(|c| errors.check("cursor", Cursor::decode(c)));
    errors.check("limit", PageRequest::new(limit, None));
    errors.finish()?;
    PageRequest::new(limit, cursor).map_err(|e| ApiError::field("limit", e.to_string()))
}

#[OpenApi(prefix_path = "/api/v1/tasks", tag = "ApiTags::Tasks")]
impl TasksApi {
    /// List the caller's tasks, newest first.
    #[oai(path = "/", method = "get")]
    async fn list(
        &self,
        caller: BearerAuth,
        /// Only completed (`true`) or pending (`false`) tasks.
        completed: Query<Option<bool>>,
        /// Case-insensitive substring of the title.
        q: Query<Option<String>>,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<i64>>,
        /// `meta.next_cursor` of the previous page.
        cursor: Query<Option<String>>,
    ) -> Result<TaskListResponse, ApiError> {
        let request = page_request(limit.0, cursor.0.as_deref())?;
        let filter = TaskFilter { completed: completed.0, title_contains: q.0.filter(|q| !q.trim().is_empty()) };
        let tasks = self.tasks.list(caller.0, &filter, &request).await.map_err(|e| crate::store_error(&e))?;
        Ok(TaskListResponse::Ok(page(tasks, TaskDto::from)))
    }

    /// Create a task.
    #[oai(path = "/", method = "post")]
    async fn create(&self, caller: BearerAuth, body: JsonBody<CreateTaskBody>) -> Result<CreateTaskResponse, ApiError> {
        let new = NewTask::try_from(body.0)?;
        let task = self.tasks.create(caller.0, new).await.map_err(|e| crate::store_error(&e))?;
        Ok(CreateTaskResponse::Created(ok(task.into())))
    }

    /// Get one task.
    #[oai(path = "/:id", method = "get")]
    async fn get(&self, caller: BearerAuth, id: Path<String>) -> Result<TaskResponse, ApiError> {
        let task = self.tasks.get(caller.0, task_id(&id)?).await.map_err(|e| task_error(e, &id))?;
        Ok(TaskResponse::Ok(ok(task.into())))
    }

    /// Replace the given fields of a task.
    #[oai(path = "/:id", method = "put")]
    async fn update(
        &self,
        caller: BearerAuth,
        id: Path<String>,
        body: JsonBody<UpdateTaskBody>,
    ) -> Result<TaskResponse, ApiError> {
        let task_id = task_id(&id)?;
        let patch = TaskPatch::try_from(body.0)?;
        let task = self.tasks.update(caller.0, task_id, patch).await.map_err(|e| task_error(e, &id))?;
        Ok(TaskResponse::Ok(ok(task.into())))
    }

    /// Toggle completion (sets or clears `completed_at`).
    #[oai(path = "/:id/complete", method = "patch")]
    async fn toggle(&self, caller: BearerAuth, id: Path<String>) -> Result<TaskResponse, ApiError> {
        let task = self.tasks.toggle(caller.0, task_id(&id)?).await.map_err(|e| task_error(e, &id))?;
        Ok(TaskResponse::Ok(ok(task.into())))
    }

    /// Delete a task.
    #[oai(path = "/:id", method = "delete")]
    async fn delete(&self, caller: BearerAuth, id: Path<String>) -> Result<DeleteTaskResponse, ApiError> {
        let task_id = task_id(&id)?;
        self.tasks.delete(caller.0, task_id).await.map_err(|e| task_error(e, &id))?;
        Ok(DeleteTaskResponse::Ok(ok(Deleted::new(task_id))))
    }
}
