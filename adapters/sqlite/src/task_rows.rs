//! The `tasks` row and its conversion to and from the `Task` aggregate.

use diesel::prelude::*;
use parley_kernel::{TaskId, UserId};
use parley_tasks::{Priority, Task, TaskDescription, TaskTitle, fold_for_search};

use crate::rows::{CorruptRow, corrupt, from_micros, parse_uuid, to_micros};
use crate::schema::tasks;

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
        })
    }
}
