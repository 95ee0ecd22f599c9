//! Safe AI edits: a task's revisions, and undoing an assistant's tool call.

use std::collections::HashMap;
use std::sync::Arc;

use parley_application::{AssistantService, TaskService};
use parley_tasks::{ActorKind, Decision, Origin, Plan, PlanError, PlannedChange, RevertError, Revision};
use poem::http::StatusCode;
use poem_openapi::param::{Path, Query};
use poem_openapi::{ApiResponse, Enum, Object, OpenApi, payload::Json};
use serde_json::{Value, json};

use crate::api::ApiTags;
use crate::api::page_request;
use crate::api::schema::{CursorText, Limit, Nullable};
use crate::api::tasks::{TaskDto, task_error, task_id};
use crate::envelope::{Envelope, PageEnvelope, Time, ok, page};
use crate::error::{ApiError, Failure, error_set};
use crate::security::BearerAuth;

pub struct EditsApi {
    pub tasks: Arc<TaskService>,
    pub assistant: Arc<AssistantService>,
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

/// One held tool call of a plan: what it would change.
#[derive(Debug, Clone, Object)]
pub struct PlannedChangeDto {
    pub tool_call_id: String,
    pub name: String,
    /// The arguments as JSON text, as the model produced them.
    pub arguments: String,
    /// The task as the plan saw it; `null` for a task the call would create.
    pub task_before: Nullable<TaskDto>,
    /// The task once changed; `null` for a deletion.
    pub task_after: Nullable<TaskDto>,
}

/// Changes the assistant proposed, waiting for approval: all are applied, or none.
#[derive(Debug, Clone, Object)]
pub struct PlanDto {
    pub id: String,
    /// After this, approving is `410 PLAN_EXPIRED`.
    pub expires_at: Time,
    pub changes: Vec<PlannedChangeDto>,
}

impl From<Plan> for PlanDto {
    fn from(plan: Plan) -> Self {
        Self {
            id: plan.id.to_string(),
            expires_at: plan.expires_at.into(),
            changes: plan
                .changes
                .into_iter()
                .map(|change| PlannedChangeDto {
                    tool_call_id: change.tool_call_id,
                    name: change.name,
                    arguments: change.arguments,
                    task_before: Nullable(change.before.map(TaskDto::from)),
                    task_after: Nullable(change.after.map(TaskDto::from)),
                })
                .collect(),
        }
    }
}

/// `approved` or `rejected`.
#[derive(Debug, Clone, Copy, Enum)]
#[oai(rename_all = "lowercase")]
pub enum PlanOutcome {
    Approved,
    Rejected,
}

/// A plan once decided.
#[derive(Debug, Object)]
pub struct DecidedPlanDto {
    pub id: String,
    pub status: PlanOutcome,
    /// The tasks the approved changes touched (absent when rejected).
    #[oai(skip_serializing_if_is_none)]
    pub applied: Option<Vec<String>>,
}

#[derive(ApiResponse)]
pub enum DecideResponse {
    /// The plan is decided.
    #[oai(status = 200)]
    Ok(Json<Envelope<DecidedPlanDto>>),
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
    /// `POST /plans/{id}/approve`.
    ApproveErrors: UNAUTHORIZED, PLAN_NOT_FOUND, PLAN_CONFLICT, PLAN_EXPIRED, INTERNAL, DATABASE;
    /// `POST /plans/{id}/reject`.
    RejectErrors: UNAUTHORIZED, PLAN_NOT_FOUND, PLAN_DECIDED, PLAN_EXPIRED, INTERNAL, DATABASE;
}

fn plan_error(error: PlanError, id: &str) -> ApiError {
    match error {
        PlanError::NotFound => ApiError::not_found("PLAN_NOT_FOUND", "Plan", "plan_id", id),
        PlanError::Decided => {
            ApiError::new(StatusCode::CONFLICT, "PLAN_DECIDED", format!("Plan '{id}' was already decided"))
                .with_details(json!({ "plan_id": id }))
        }
        PlanError::Expired => ApiError::new(StatusCode::GONE, "PLAN_EXPIRED", format!("Plan '{id}' expired"))
            .with_details(json!({ "plan_id": id })),
        PlanError::Conflict(tasks) => {
            let ids: Vec<String> = tasks.iter().map(ToString::to_string).collect();
            ApiError::new(
                StatusCode::CONFLICT,
                "PLAN_CONFLICT",
                format!("Tasks changed since plan '{id}' was made: {}; nothing was changed", ids.join(", ")),
            )
            .with_details(json!({ "plan_id": id, "task_ids": ids }))
        }
        PlanError::Store(store) => crate::error::store_error(&store),
    }
}

/// A malformed plan id is a plan that does not exist.
fn plan_id(raw: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(raw).map_err(|_| plan_error(PlanError::NotFound, raw))
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
        RevertError::Store(store) => crate::error::store_error(&store),
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

    /// Apply every change of a plan the assistant proposed, in one transaction, or none.
    #[oai(path = "/api/v1/plans/:id/approve", method = "post", operation_id = "approve_plan", tag = "ApiTags::Chat")]
    async fn approve(&self, caller: BearerAuth, id: Path<String>) -> Result<DecideResponse, Failure<ApproveErrors>> {
        let plan =
            self.assistant.decide(caller.0, plan_id(&id)?, Decision::Approve).await.map_err(|e| plan_error(e, &id))?;
        let applied = plan.changes.iter().filter_map(PlannedChange::task_id).map(|t| t.to_string()).collect();
        Ok(DecideResponse::Ok(ok(DecidedPlanDto { id: id.0, status: PlanOutcome::Approved, applied: Some(applied) })))
    }

    /// Drop a plan the assistant proposed; nothing is changed.
    #[oai(path = "/api/v1/plans/:id/reject", method = "post", operation_id = "reject_plan", tag = "ApiTags::Chat")]
    async fn reject(&self, caller: BearerAuth, id: Path<String>) -> Result<DecideResponse, Failure<RejectErrors>> {
        self.assistant.decide(caller.0, plan_id(&id)?, Decision::Reject).await.map_err(|e| plan_error(e, &id))?;
        Ok(DecideResponse::Ok(ok(DecidedPlanDto { id: id.0, status: PlanOutcome::Rejected, applied: None })))
    }
}
