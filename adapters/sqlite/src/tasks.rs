//! `TaskRepository` on SQLite.

use async_trait::async_trait;
use diesel::dsl::{exists, select, sql};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel::sqlite::Sqlite;
use parley_kernel::{Cursor, Page, PageRequest, StoreError, TaskId, Timestamp, UserId};
use parley_tasks::{Task, TaskChange, TaskError, TaskFilter, TaskRepository, fold_for_search};

use crate::SqliteStore;
use crate::rows::{Owned, keyset};
use crate::schema::tasks;
use crate::task_rows::TaskRow;

/// Each user's tasks in the `tasks` table.
pub struct SqliteTaskRepository {
    store: SqliteStore,
}

impl SqliteTaskRepository {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

/// The phrase an FTS5 trigram `MATCH` reads as the substring `folded`.
fn trigram_phrase(folded: &str) -> String {
    format!("\"{}\"", folded.replace('"', "\"\""))
}

/// The owner's tasks matching `filter`. `q` is a substring of the folded
/// title (decision 0008): from three characters on, the trigram index
/// `tasks_title_search` finds the candidates; shorter queries are checked
/// on the owner's rows alone. `instr` decides in both cases.
fn matching(owner: &str, filter: &TaskFilter) -> tasks::BoxedQuery<'static, Sqlite> {
    let mut query = tasks::table.filter(tasks::user_id.eq(owner.to_owned())).into_boxed();
    match filter.completed {
        Some(true) => query = query.filter(tasks::completed_at.is_not_null()),
        Some(false) => query = query.filter(tasks::completed_at.is_null()),
        None => {}
    }
    if let Some(text) = &filter.title_contains {
        let folded = fold_for_search(text);
        if folded.chars().count() >= 3 {
            query = query.filter(
                sql::<Bool>("tasks.rowid IN (SELECT rowid FROM tasks_title_search WHERE tasks_title_search MATCH ")
                    .bind::<Text, _>(trigram_phrase(&folded))
                    .sql(")"),
            );
        }
        query = query.filter(sql::<Bool>("instr(tasks.title_folded, ").bind::<Text, _>(folded).sql(") > 0"));
    }
    query
}

/// The statement of one page of tasks, boxed.
pub(crate) type TaskPage =
    tasks::BoxedQuery<'static, Sqlite, diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<TaskRow, Sqlite>>>;

/// One page of the owner's tasks matching `filter`, newest first, after
/// `cursor`: the statement `list` runs, `limit` rows.
pub(crate) fn page_query(owner: &str, filter: &TaskFilter, cursor: Option<Cursor>, limit: i64) -> TaskPage {
    let mut query = matching(owner, filter);
    if let Some(cursor) = cursor {
        query = query.filter(keyset("tasks.created_at, tasks.id", true, cursor));
    }
    query.select(TaskRow::as_select()).order((tasks::created_at.desc(), tasks::id.desc())).limit(limit)
}

fn lookup(conn: &mut SqliteConnection, id: &str, owner: &str) -> QueryResult<Owned<TaskRow>> {
    let row = tasks::table.find(id).select(TaskRow::as_select()).first(conn).optional()?;
    Ok(Owned::check(row, owner, |row| &row.user_id))
}

#[async_trait]
impl TaskRepository for SqliteTaskRepository {
    #[tracing::instrument(skip_all, fields(task_id = %task.id))]
    async fn create(&self, task: &Task) -> Result<(), StoreError> {
        let row = TaskRow::from_task(task);
        self.store.run(move |conn| diesel::insert_into(tasks::table).values(&row).execute(conn).map(drop)).await
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn get(&self, owner: UserId, id: TaskId) -> Result<Task, TaskError> {
        let (key, owner) = (id.to_string(), owner.to_string());
        let found = self.store.run(move |conn| lookup(conn, &key, &owner)).await?;
        let row = found.into_result(TaskError::NotFound, TaskError::Forbidden)?;
        Ok(row.into_task().map_err(StoreError::from)?)
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, owner: UserId, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>, StoreError> {
        let (owner, filter, cursor) = (owner.to_string(), filter.clone(), page.cursor());
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    let total: i64 = capped_count!(matching(&owner, &filter), conn);
                    let rows = page_query(&owner, &filter, cursor, fetch).load(conn)?;
                    Ok((rows, total))
                })
            })
            .await?;
        let tasks = rows.into_iter().map(TaskRow::into_task).collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(tasks, page, total, |task| Cursor { at: task.created_at, id: task.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn update(&self, owner: UserId, id: TaskId, change: TaskChange, now: Timestamp) -> Result<Task, TaskError> {
        let (key, owner) = (id.to_string(), owner.to_string());
        let updated = self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    let row = match lookup(conn, &key, &owner)? {
                        Owned::Mine(row) => row,
                        Owned::NotFound => return Ok(Owned::NotFound),
                        Owned::Forbidden => return Ok(Owned::Forbidden),
                    };
                    let task = row.into_task()?.apply(change, now);
                    let stored = TaskRow::from_task(&task);
                    diesel::update(tasks::table.find(&key)).set(stored.changes()).execute(conn)?;
                    Ok(Owned::Mine(task))
                })
            })
            .await?;
        updated.into_result(TaskError::NotFound, TaskError::Forbidden)
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn delete(&self, owner: UserId, id: TaskId) -> Result<(), TaskError> {
        let (key, owner) = (id.to_string(), owner.to_string());
        let deleted = self
            .store
            .run(move |conn| {
                let mine = tasks::table.filter(tasks::id.eq(&key)).filter(tasks::user_id.eq(&owner));
                if diesel::delete(mine).execute(conn)? > 0 {
                    return Ok(Owned::Mine(()));
                }
                let exists: bool = select(exists(tasks::table.find(&key))).get_result(conn)?;
                Ok(if exists { Owned::Forbidden } else { Owned::NotFound })
            })
            .await?;
        deleted.into_result(TaskError::NotFound, TaskError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::trigram_phrase;

    #[test]
    fn a_trigram_phrase_quotes_its_quotes() {
        assert_eq!(trigram_phrase("abc"), "\"abc\"");
        assert_eq!(trigram_phrase(r#"say "hi" * OR x"#), r#""say ""hi"" * OR x""#);
    }
}
