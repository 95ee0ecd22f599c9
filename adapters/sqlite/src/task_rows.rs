//! The `tasks` row and its conversion to and from the `Task` aggregate.

use diesel::prelude::*;
use parley_kernel::{ConversationId, TaskId, UserId};
use parley_tasks::{
    Attribution, Priority, Revision, Task, TaskDescription, TaskTitle, changes_from_json, changes_json, fold_for_search,
};

use crate::rows::{CorruptRow, corrupt, from_micros, parse_uuid, to_micros};
use crate::schema::{task_revisions, tasks};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = tasks, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct TaskRow {
    pub id: String,
    pub user_id: String,
    pub title: String,
    pub title_folded: String,
    pub description: String,
    pub priority: String,
    pub due_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub completed_at: Option<i64>,
    pub version: i32,
}

/// Every column a change may touch; `None` writes NULL.
type TaskChanges = (
    diesel::dsl::Eq<tasks::title, String>,
    diesel::dsl::Eq<tasks::title_folded, String>,
    diesel::dsl::Eq<tasks::description, String>,
    diesel::dsl::Eq<tasks::priority, String>,
    diesel::dsl::Eq<tasks::due_at, Option<i64>>,
    diesel::dsl::Eq<tasks::updated_at, i64>,
    diesel::dsl::Eq<tasks::completed_at, Option<i64>>,
    diesel::dsl::Eq<tasks::version, i32>,
);

impl TaskRow {
    pub(crate) fn from_task(task: &Task) -> Self {
        Self {
            id: task.id.to_string(),
            user_id: task.owner.to_string(),
            title: task.title.as_str().to_owned(),
            title_folded: fold_for_search(task.title.as_str()),
            description: task.description.as_str().to_owned(),
            priority: task.priority.as_str().to_owned(),
            due_at: task.due_at.map(to_micros),
            created_at: to_micros(task.created_at),
            updated_at: to_micros(task.updated_at),
            completed_at: task.completed_at.map(to_micros),
            version: i32::try_from(task.version).unwrap_or(i32::MAX),
        }
    }

    pub(crate) fn changes(self) -> TaskChanges {
        (
            tasks::title.eq(self.title),
            tasks::title_folded.eq(self.title_folded),
            tasks::description.eq(self.description),
            tasks::priority.eq(self.priority),
            tasks::due_at.eq(self.due_at),
            tasks::updated_at.eq(self.updated_at),
            tasks::completed_at.eq(self.completed_at),
            tasks::version.eq(self.version),
        )
    }

    pub(crate) fn into_task(self) -> Result<Task, CorruptRow> {
        Ok(Task {
            id: TaskId::from_uuid(parse_uuid(&self.id)?),
            owner: UserId::from_uuid(parse_uuid(&self.user_id)?),
            title: TaskTitle::parse(&self.title).map_err(corrupt)?,
            description: TaskDescription::parse(&self.description).map_err(corrupt)?,
            priority: self.priority.parse::<Priority>().map_err(corrupt)?,
            due_at: self.due_at.map(from_micros).transpose()?,
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
            completed_at: self.completed_at.map(from_micros).transpose()?,
            version: u32::try_from(self.version).map_err(corrupt)?,
        })
    }
}

/// The `task_revisions` row of a [`Revision`].
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = task_revisions, check_for_backend(diesel::sqlite::Sqlite))]
pub(crate) struct RevisionRow {
    pub id: String,
    pub task_id: String,
    pub user_id: String,
    pub version: i32,
    pub action: String,
    pub changes: String,
    pub actor: String,
    pub origin: String,
    pub conversation_id: Option<String>,
    pub tool_call_id: Option<String>,
    pub before: Option<String>,
    pub created_at: i64,
}

impl RevisionRow {
    pub(crate) fn from_revision(revision: &Revision) -> Self {
        Self {
            id: revision.id.to_string(),
            task_id: revision.task_id.to_string(),
            user_id: revision.by.user.to_string(),
            version: i32::try_from(revision.version).unwrap_or(i32::MAX),
            action: revision.action.as_str().to_owned(),
            changes: changes_json(&revision.changes).to_string(),
            actor: revision.by.actor.as_str().to_owned(),
            origin: revision.by.origin.as_str().to_owned(),
            conversation_id: revision.by.conversation.map(|id| id.to_string()),
            tool_call_id: revision.by.tool_call.clone(),
            before: revision.before.as_ref().map(ToString::to_string),
            created_at: to_micros(revision.created_at),
        }
    }

    pub(crate) fn into_revision(self) -> Result<Revision, CorruptRow> {
        let json = |text: &str| serde_json::from_str::<serde_json::Value>(text).map_err(corrupt);
        Ok(Revision {
            id: parse_uuid(&self.id)?,
            task_id: TaskId::from_uuid(parse_uuid(&self.task_id)?),
            version: u32::try_from(self.version).map_err(corrupt)?,
            action: self.action.parse().map_err(corrupt)?,
            changes: changes_from_json(&json(&self.changes)?).map_err(corrupt)?,
            by: Attribution {
                actor: self.actor.parse().map_err(corrupt)?,
                user: UserId::from_uuid(parse_uuid(&self.user_id)?),
                origin: self.origin.parse().map_err(corrupt)?,
                conversation: self
                    .conversation_id
                    .as_deref()
                    .map(parse_uuid)
                    .transpose()?
                    .map(ConversationId::from_uuid),
                tool_call: self.tool_call_id,
            },
            before: self.before.as_deref().map(json).transpose()?,
            created_at: from_micros(self.created_at)?,
        })
    }
}
