//! Safe AI edits: a task's revisions, and undoing an assistant's tool call.

use std::collections::HashMap;
use std::sync::Arc;

use parley_application::TaskService;
use parley_tasks::{ActorKind, Origin, RevertError, Revision};
use poem::http::StatusCode;
use poem_openapi::param::{Path, Query};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};
use serde_json::{Value, json};

use crate::api::ApiTags;
use crate::api::schema::{CursorText, Limit, Nullable};
use crate::api::tasks::{page_request, task_error, task_id};
use crate::envelope::{Envelope, PageEnvelope, Time, ok, page};
use crate::error::{ApiError, Failure, error_set};
use crate::security::BearerAuth;

pub struct EditsApi {
    pub tasks: Arc<TaskService>,
}

/// What a change did: `created`, `updated`, `completed`, `reopened`, `deleted` or `restored`.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum RevisionAction {
    Created,
    Updated,
    Completed,
    Reopened,
    Deleted,
    Restored,
}

impl From<parley_tasks::Action> for RevisionAction {
    fn from(action: parley_tasks::Action) -> Self {
        use parley_tasks::Action;
        match action {
            Action::Created => Self::Created,
            Action::Updated => Self::Updated,
            Action::Completed => Self::Completed,
            Action::Reopened => Self::Reopened,
            Action::Deleted => Self::Deleted,
            Action::Restored => Self::Restored,
        }
    }
}

/// Who made a change: the `user`, or their `assistant`.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum ActorKindDto {
    User,
    Assistant,
}

/// Which door a change came through.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "snake_case")]
pub enum OriginDto {
    Rest,
    Chat,
    Chatkit,
    ChatkitProtocol,
    Room,
}

impl From<Origin> for OriginDto {
    fn from(origin: Origin) -> Self {
        match origin {
            Origin::Rest => Self::Rest,
            Origin::Chat => Self::Chat,
            Origin::Chatkit => Self::Chatkit,
            Origin::ChatkitProtocol => Self::ChatkitProtocol,
            Origin::Room => Self::Room,
        }
    }
}

/// Who made a change, for which user.
#[derive(Debug, Object)]
pub struct ActorDto {
    pub kind: ActorKindDto,
    pub user_id: String,
}

/// One recorded change of a task.
#[derive(Debug, Object)]
pub struct RevisionDto {
    pub id: String,
    pub task_id: String,
    /// The task's version after this change.
    pub version: u32,
    pub action: RevisionAction,
    /// Each changed field (`title`, `description`, `priority`, `due_at`, `completed`): `[before, after]`.
    pub changes: HashMap<String, Vec<Value>>,
    pub actor: ActorDto,
    pub origin: OriginDto,
    /// The conversation of an assistant's change.
    pub conversation_id: Nullable<String>,
    /// The tool call of an assistant's change (`POST /tool-calls/{id}/revert` undoes it).
    pub tool_call_id: Nullable<String>,
    pub created_at: Time,
}

impl From<Revision> for RevisionDto {
    fn from(revision: Revision) -> Self {
        Self {
            id: revision.id.to_string(),
            task_id: revision.task_id.to_string(),
            version: revision.version,
            action: revision.action.into(),
            changes: revision.changes.into_iter().map(|(field, pair)| (field, pair.to_vec())).collect(),
            actor: ActorDto {
                kind: match revision.by.actor {
                    ActorKind::User => ActorKindDto::User,
                    ActorKind::Assistant => ActorKindDto::Assistant,
                },
                user_id: revision.by.user.to_string(),
            },
            origin: revision.by.origin.into(),
            conversation_id: Nullable(revision.by.conversation.map(|id| id.to_string())),
            tool_call_id: Nullable(revision.by.tool_call),
            created_at: revision.created_at.into(),
        }
    }
}

/// What undoing a tool call changed.
#[derive(Debug, Object)]
pub struct RevertedDto {
    pub tool_call_id: String,
    /// The tasks it brought back to how they were before the call.
    pub reverted: Vec<String>,
}

#[derive(ApiResponse)]
pub enum RevisionsResponse {
    /// A page of the task's revisions, newest first.
    #[oai(status = 200)]
    Ok(Json<PageEnvelope<RevisionDto>>),
}

#[derive(ApiResponse)]
pub enum RevertResponse {
    /// Every change of the tool call was undone, in one transaction.
    #[oai(status = 200)]
    Ok(Json<Envelope<RevertedDto>>),
}

error_set! {
    /// `GET /tasks/{id}/revisions`.
    RevisionErrors: VALIDATION, UNAUTHORIZED, FORBIDDEN, TASK_NOT_FOUND, INTERNAL, DATABASE;
    /// `POST /tool-calls/{id}/revert`.
    RevertErrors: UNAUTHORIZED, TOOL_CALL_NOT_FOUND, REVERT, INTERNAL, DATABASE;
}

fn revert_error(error: RevertError, id: &str) -> ApiError {
    match error {
        RevertError::NotFound => ApiError::not_found("TOOL_CALL_NOT_FOUND", "Tool call", "tool_call_id", id),
        RevertError::AlreadyReverted => {
            ApiError::new(StatusCode::CONFLICT, "ALREADY_REVERTED", format!("Tool call '{id}' was already reverted"))
                .with_details(json!({ "tool_call_id": id }))
        }
        RevertError::Conflict(tasks) => {
            let ids: Vec<String> = tasks.iter().map(ToString::to_string).collect();
            ApiError::new(
                StatusCode::CONFLICT,
                "REVERT_CONFLICT",
                format!("Tasks changed since tool call '{id}': {}; nothing was changed", ids.join(", ")),
            )
            .with_details(json!({ "tool_call_id": id, "task_ids": ids }))
        }
        RevertError::Store(store) => crate::store_error(&store),
    }
}

#[OpenApi(tag = "ApiTags::Tasks")]
impl EditsApi {
    /// A task's revisions, newest first: who changed what, how and from where (also after it was deleted).
    #[oai(path = "/api/v1/tasks/:id/revisions", method = "get", operation_id = "list_task_revisions")]
    async fn revisions(
        &self,
        caller: BearerAuth,
        id: Path<String>,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<Limit>>,
        /// `meta.next_cursor` of the previous page (an opaque token).
        cursor: Query<Option<CursorText>>,
    ) -> Result<RevisionsResponse, Failure<RevisionErrors>> {
        let task = task_id(&id)?;
        let request = page_request(&limit, &cursor)?;
        let revisions = self.tasks.revisions(caller.0, task, &request).await.map_err(|e| task_error(e, &id))?;
        Ok(RevisionsResponse::Ok(page(revisions, RevisionDto::from)))
    }

    /// Undo every change an assistant's tool call made, in one transaction.
    #[oai(path = "/api/v1/tool-calls/:id/revert", method = "post", operation_id = "revert_tool_call")]
    async fn revert(&self, caller: BearerAuth, id: Path<String>) -> Result<RevertResponse, Failure<RevertErrors>> {
        let reverted = self.tasks.revert(caller.0, &id, Origin::Rest).await.map_err(|e| revert_error(e, &id))?;
        let reverted = reverted.iter().map(ToString::to_string).collect();
        Ok(RevertResponse::Ok(ok(RevertedDto { tool_call_id: id.0, reverted })))
    }
}
