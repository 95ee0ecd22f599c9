//! The `tasks`, `plans` and `task_revisions` rows and their conversion to
//! and from the domain types.

use diesel::pg::Pg;
use diesel::prelude::*;
use parley_kernel::{TaskId, Timestamp, UserId};
use parley_tasks::{
    Attribution, Plan, Revision, Task, TaskDescription, TaskTitle, changes_from_json, changes_from_stored,
    changes_json, changes_to_json,
};
use uuid::Uuid;

use crate::error::PgError;
use crate::schema::{plans, task_revisions, tasks};

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tasks, check_for_backend(Pg), treat_none_as_null = true, treat_none_as_default_value = false)]
pub(crate) struct TaskRow {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) title: String,
    pub(crate) description: String,
    pub(crate) priority: String,
    pub(crate) due_at: Option<Timestamp>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) completed_at: Option<Timestamp>,
    pub(crate) version: i32,
}

impl From<&Task> for TaskRow {
    fn from(task: &Task) -> Self {
        Self {
            id: task.id.as_uuid(),
            user_id: task.owner.as_uuid(),
            title: task.title.as_str().to_owned(),
            description: task.description.as_str().to_owned(),
            priority: task.priority.as_str().to_owned(),
            due_at: task.due_at,
            created_at: task.created_at,
            updated_at: task.updated_at,
            completed_at: task.completed_at,
            version: i32::try_from(task.version).unwrap_or(i32::MAX),
        }
    }
}

impl TryFrom<TaskRow> for Task {
    type Error = PgError;

    fn try_from(row: TaskRow) -> Result<Self, PgError> {
        Ok(Self {
            id: TaskId::from_uuid(row.id),
            owner: UserId::from_uuid(row.user_id),
            title: TaskTitle::parse(&row.title).map_err(PgError::corrupt)?,
            description: TaskDescription::parse(&row.description).map_err(PgError::corrupt)?,
            priority: row.priority.parse().map_err(PgError::corrupt)?,
            due_at: row.due_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            completed_at: row.completed_at,
            version: u32::try_from(row.version).map_err(PgError::corrupt)?,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = plans, check_for_backend(Pg))]
pub(crate) struct PlanRow {
    pub(crate) id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) conversation_id: Uuid,
    pub(crate) origin: String,
    pub(crate) changes: serde_json::Value,
    pub(crate) status: String,
    pub(crate) created_at: Timestamp,
    pub(crate) expires_at: Timestamp,
    pub(crate) decided_at: Option<Timestamp>,
}

impl From<&Plan> for PlanRow {
    fn from(plan: &Plan) -> Self {
        Self {
            id: plan.id,
            user_id: plan.owner.as_uuid(),
            conversation_id: plan.conversation.as_uuid(),
            origin: plan.origin.as_str().to_owned(),
            changes: changes_to_json(&plan.changes),
            status: plan.status.as_str().to_owned(),
            created_at: plan.created_at,
            expires_at: plan.expires_at,
            decided_at: None,
        }
    }
}

impl TryFrom<PlanRow> for Plan {
    type Error = PgError;

    fn try_from(row: PlanRow) -> Result<Self, PgError> {
        Ok(Self {
            id: row.id,
            owner: UserId::from_uuid(row.user_id),
            conversation: parley_kernel::ConversationId::from_uuid(row.conversation_id),
            origin: row.origin.parse().map_err(PgError::corrupt)?,
            changes: changes_from_stored(&row.changes).map_err(PgError::corrupt)?,
            status: row.status.parse().map_err(PgError::corrupt)?,
            created_at: row.created_at,
            expires_at: row.expires_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = task_revisions, check_for_backend(Pg))]
pub(crate) struct RevisionRow {
    pub(crate) id: Uuid,
    pub(crate) task_id: Uuid,
    pub(crate) user_id: Uuid,
    pub(crate) version: i32,
    pub(crate) action: String,
    pub(crate) changes: serde_json::Value,
    pub(crate) actor: String,
    pub(crate) origin: String,
    pub(crate) conversation_id: Option<Uuid>,
    pub(crate) tool_call_id: Option<String>,
    pub(crate) before: Option<serde_json::Value>,
    pub(crate) created_at: Timestamp,
}

impl From<&Revision> for RevisionRow {
    fn from(revision: &Revision) -> Self {
        Self {
            id: revision.id,
            task_id: revision.task_id.as_uuid(),
            user_id: revision.by.user.as_uuid(),
            version: i32::try_from(revision.version).unwrap_or(i32::MAX),
            action: revision.action.as_str().to_owned(),
            changes: changes_json(&revision.changes),
            actor: revision.by.actor.as_str().to_owned(),
            origin: revision.by.origin.as_str().to_owned(),
            conversation_id: revision.by.conversation.map(|id| id.as_uuid()),
            tool_call_id: revision.by.tool_call.clone(),
            before: revision.before.clone(),
            created_at: revision.created_at,
        }
    }
}

impl TryFrom<RevisionRow> for Revision {
    type Error = PgError;

    fn try_from(row: RevisionRow) -> Result<Self, PgError> {
        Ok(Self {
            id: row.id,
            task_id: TaskId::from_uuid(row.task_id),
            version: u32::try_from(row.version).map_err(PgError::corrupt)?,
            action: row.action.parse().map_err(PgError::corrupt)?,
            changes: changes_from_json(&row.changes).map_err(PgError::corrupt)?,
            by: Attribution {
                actor: row.actor.parse().map_err(PgError::corrupt)?,
                user: UserId::from_uuid(row.user_id),
                origin: row.origin.parse().map_err(PgError::corrupt)?,
                conversation: row.conversation_id.map(parley_kernel::ConversationId::from_uuid),
                tool_call: row.tool_call_id,
            },
            before: row.before,
            created_at: row.created_at,
        })
    }
}
