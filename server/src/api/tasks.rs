//! `/api/v1/tasks`: the caller's to-do list.

use std::sync::Arc;

use parley_application::TaskService;
use parley_kernel::TaskId;
use parley_tasks::{
    Attribution, NewTask, Origin, Priority, Task, TaskDescription, TaskError, TaskFilter, TaskPatch, TaskTitle,
};
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::types::Example;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::types::ToJSON;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};

use crate::api::schema::{CursorText, Limit, Nullable, Text, nul_in};
use crate::api::{ApiTags, FieldErrors, page_request_and};
use crate::body::JsonBody;
use crate::envelope::{Deleted, Envelope, PageEnvelope, Time, ok, page};
use crate::error::{ApiError, Failure, error_set};
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

/// A task on the caller's to-do list.
#[derive(Debug, Clone, Object)]
#[oai(example)]
pub struct TaskDto {
    pub id: String,
    pub title: String,
    pub description: String,
    pub completed: bool,
    pub priority: PriorityDto,
    /// `null` when the task has no due date.
    pub due_at: Nullable<Time>,
    pub created_at: Time,
    pub updated_at: Time,
    /// When it was completed; `null` while it is pending.
    pub completed_at: Nullable<Time>,
    /// 1 when created, one more on every change; the `ETag` of task responses.
    pub version: u32,
}

fn example_time(text: &str) -> Time {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| Time::now())
}

impl Example for TaskDto {
    fn example() -> Self {
        Self {
            id: "01936a4e-8f1c-7d2a-9b3e-5f6a7b8c9d0e".to_owned(),
            title: "Buy milk".to_owned(),
            description: "Two litres, semi-skimmed".to_owned(),
            completed: false,
            priority: PriorityDto::High,
            due_at: Nullable(Some(example_time("2026-11-22T18:00:00Z"))),
            created_at: example_time("2026-11-21T09:30:28.097757Z"),
            updated_at: example_time("2026-11-21T09:30:28.097757Z"),
            completed_at: Nullable(None),
            version: 1,
        }
    }
}

impl From<Task> for TaskDto {
    fn from(task: Task) -> Self {
        Self {
            id: task.id.to_string(),
            completed: task.completed(),
            title: task.title.to_string(),
            description: task.description.as_str().to_owned(),
            priority: task.priority.into(),
            due_at: Nullable(task.due_at.map(Time)),
            created_at: task.created_at.into(),
            updated_at: task.updated_at.into(),
            completed_at: Nullable(task.completed_at.map(Time)),
            version: task.version,
        }
    }
}

/// A new task.
#[derive(Debug, Object)]
#[oai(example)]
pub struct CreateTaskBody {
    /// 1 to 200 characters after trimming.
    pub title: Text<1, 200, true>,
    /// At most 1000 characters; default empty.
    pub description: Option<Text<0, 1000>>,
    pub priority: Option<PriorityDto>,
    /// Omitted or `null`: no due date.
    #[oai(nullable)]
    pub due_at: Option<Time>,
}

impl Example for CreateTaskBody {
    fn example() -> Self {
        Self {
            title: Text("Buy milk".to_owned()),
            description: Some(Text("Two litres, semi-skimmed".to_owned())),
            priority: Some(PriorityDto::High),
            due_at: Some(example_time("2026-11-22T18:00:00Z")),
        }
    }
}

/// Fields given replace the stored ones; `due_at: null` clears the due date.
#[derive(Debug, Object)]
#[oai(example)]
pub struct UpdateTaskBody {
    /// 1 to 200 characters after trimming.
    pub title: Option<Text<1, 200, true>>,
    /// At most 1000 characters.
    pub description: Option<Text<0, 1000>>,
    pub priority: Option<PriorityDto>,
    /// `null` clears the due date.
    #[oai(nullable)]
    pub due_at: MaybeUndefined<Time>,
    pub completed: Option<bool>,
}

impl Example for UpdateTaskBody {
    fn example() -> Self {
        Self {
            title: Some(Text("Buy oat milk".to_owned())),
            description: Some(Text("One carton".to_owned())),
            priority: Some(PriorityDto::Low),
            due_at: MaybeUndefined::Null,
            completed: Some(true),
        }
    }
}

#[derive(ApiResponse)]
pub enum TaskResponse {
    /// The task; `ETag` is its version.
    #[oai(status = 200)]
    Ok(Json<Envelope<TaskDto>>, #[oai(header = "ETag")] String),
}

#[derive(ApiResponse)]
pub enum CreateTaskResponse {
    /// The task was created; `ETag` is its version.
    #[oai(status = 201)]
    Created(Json<Envelope<TaskDto>>, #[oai(header = "ETag")] String),
}

/// `"<version>"`: a task's entity tag.
pub fn etag(task: &Task) -> String {
    format!("\"{}\"", task.version)
}

fn task_ok(task: Task) -> TaskResponse {
    let tag = etag(&task);
    TaskResponse::Ok(ok(task.into()), tag)
}

/// The version an `If-Match` header asks for: `None` without one, for an
/// empty one or for `*`; a tag that is no version (or a list of several)
/// never matches.
fn if_match(header: Option<&str>) -> Option<u32> {
    let value = header?.trim();
    if value.is_empty() || value == "*" {
        return None;
    }
    let tag = value.strip_prefix("W/").unwrap_or(value);
    Some(tag.trim_matches('"').parse().unwrap_or(0))
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

impl TryFrom<CreateTaskBody> for NewTask {
    type Error = ApiError;

    fn try_from(body: CreateTaskBody) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let title = errors.check("title", TaskTitle::parse(body.title.as_str()));
        let description =
            errors.check("description", TaskDescription::parse(body.description.as_ref().map_or("", Text::as_str)));
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
        let title = body.title.map(|t| errors.check("title", TaskTitle::parse(t.as_str())));
        let description = body.description.map(|d| errors.check("description", TaskDescription::parse(d.as_str())));
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
pub(crate) fn task_id(raw: &str) -> Result<TaskId, ApiError> {
    raw.parse().map_err(|_| not_found(raw))
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found("TASK_NOT_FOUND", "Task", "task_id", id)
}

pub(crate) fn task_error(error: TaskError, id: &str) -> ApiError {
    match error {
        TaskError::NotFound => not_found(id),
        TaskError::Forbidden => ApiError::forbidden(),
        TaskError::Stale { expected, current } => {
            let current = TaskDto::from(*current);
            ApiError::new(
                poem::http::StatusCode::PRECONDITION_FAILED,
                "PRECONDITION_FAILED",
                format!("Task '{id}' is at version {}, not {expected}", current.version),
            )
            .with_details(serde_json::json!({ "current": current.to_json() }))
        }
        TaskError::Store(store) => crate::error::store_error(&store),
    }
}

error_set! {
    /// `GET /tasks`.
    ListErrors: VALIDATION, UNAUTHORIZED, INTERNAL, DATABASE;
    /// `POST /tasks`.
    CreateErrors: VALIDATION, UNAUTHORIZED, TOO_LARGE, INTERNAL, DATABASE;
    /// `GET /tasks/{id}`.
    TaskErrors: UNAUTHORIZED, FORBIDDEN, TASK_NOT_FOUND, INTERNAL, DATABASE;
    /// `PATCH .../complete` and `DELETE /tasks/{id}`.
    ChangeErrors: UNAUTHORIZED, FORBIDDEN, TASK_NOT_FOUND, STALE, INTERNAL, DATABASE;
    /// `PUT /tasks/{id}`.
    UpdateErrors: VALIDATION, UNAUTHORIZED, FORBIDDEN, TASK_NOT_FOUND, STALE, TOO_LARGE, INTERNAL, DATABASE;
}

#[OpenApi(prefix_path = "/api/v1/tasks", tag = "ApiTags::Tasks")]
impl TasksApi {
    /// List the caller's tasks, newest first.
    #[oai(path = "/", method = "get", operation_id = "list_tasks")]
    async fn list(
        &self,
        caller: BearerAuth,
        /// Only completed (`true`) or pending (`false`) tasks.
        completed: Query<Option<bool>>,
        /// Case-insensitive substring of the title.
        q: Query<Option<Text<0, 0>>>,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<Limit>>,
        /// `meta.next_cursor` of the previous page (an opaque token).
        cursor: Query<Option<CursorText>>,
    ) -> Result<TaskListResponse, Failure<ListErrors>> {
        let request = page_request_and(&limit, &cursor, nul_in("q", q.0.as_ref().map(Text::as_str)))?;
        let q = q.0.map(|q| q.0).filter(|q| !q.trim().is_empty());
        let filter = TaskFilter { completed: completed.0, title_contains: q };
        let tasks = self.tasks.list(caller.0, &filter, &request).await.map_err(|e| crate::error::store_error(&e))?;
        Ok(TaskListResponse::Ok(page(tasks, TaskDto::from)))
    }

    /// Create a task.
    #[oai(path = "/", method = "post", operation_id = "create_task")]
    async fn create(
        &self,
        caller: BearerAuth,
        body: JsonBody<CreateTaskBody>,
    ) -> Result<CreateTaskResponse, Failure<CreateErrors>> {
        let new = NewTask::try_from(body.0)?;
        let by = Attribution::user(caller.0, Origin::Rest);
        let task = self.tasks.create(&by, new).await.map_err(|e| crate::error::store_error(&e))?;
        let tag = etag(&task);
        Ok(CreateTaskResponse::Created(ok(task.into()), tag))
    }

    /// Get one task.
    #[oai(path = "/:id", method = "get", operation_id = "get_task")]
    async fn get(&self, caller: BearerAuth, id: Path<String>) -> Result<TaskResponse, Failure<TaskErrors>> {
        let task = self.tasks.get(caller.0, task_id(&id)?).await.map_err(|e| task_error(e, &id))?;
        Ok(task_ok(task))
    }

    /// Replace the given fields of a task.
    #[oai(path = "/:id", method = "put", operation_id = "update_task")]
    async fn update(
        &self,
        caller: BearerAuth,
        id: Path<String>,
        /// Only if the task is still at this version (its `ETag`); else `412`.
        #[oai(name = "If-Match")]
        version: Header<Option<String>>,
        body: JsonBody<UpdateTaskBody>,
    ) -> Result<TaskResponse, Failure<UpdateErrors>> {
        let task_id = task_id(&id)?;
        let patch = TaskPatch::try_from(body.0)?;
        let by = Attribution::user(caller.0, Origin::Rest);
        let expected = if_match(version.0.as_deref());
        let task = self.tasks.update(&by, task_id, patch, expected).await.map_err(|e| task_error(e, &id))?;
        Ok(task_ok(task))
    }

    /// Toggle completion (sets or clears `completed_at`).
    #[oai(path = "/:id/complete", method = "patch", operation_id = "complete_task")]
    async fn toggle(
        &self,
        caller: BearerAuth,
        id: Path<String>,
        /// Only if the task is still at this version (its `ETag`); else `412`.
        #[oai(name = "If-Match")]
        version: Header<Option<String>>,
    ) -> Result<TaskResponse, Failure<ChangeErrors>> {
        let by = Attribution::user(caller.0, Origin::Rest);
        let expected = if_match(version.0.as_deref());
        let task = self.tasks.toggle(&by, task_id(&id)?, expected).await.map_err(|e| task_error(e, &id))?;
        Ok(task_ok(task))
    }

    /// Delete a task.
    #[oai(path = "/:id", method = "delete", operation_id = "delete_task")]
    async fn delete(
        &self,
        caller: BearerAuth,
        id: Path<String>,
        /// Only if the task is still at this version (its `ETag`); else `412`.
        #[oai(name = "If-Match")]
        version: Header<Option<String>>,
    ) -> Result<DeleteTaskResponse, Failure<ChangeErrors>> {
        let task_id = task_id(&id)?;
        let by = Attribution::user(caller.0, Origin::Rest);
        let expected = if_match(version.0.as_deref());
        self.tasks.delete(&by, task_id, expected).await.map_err(|e| task_error(e, &id))?;
        Ok(DeleteTaskResponse::Ok(ok(Deleted::new(task_id))))
    }
}
