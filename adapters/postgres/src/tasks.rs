//! `TaskRepository` on PostgreSQL.

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use parley_kernel::{Cursor, Page, PageRequest, StoreError, TaskId, Timestamp, UserId};
use parley_tasks::{
    Task, TaskChange, TaskDescription, TaskError, TaskFilter, TaskRepository, TaskTitle, fold_for_search, has_trigram,
};
use uuid::Uuid;

use crate::error::{AccessError, PgError};
use crate::pool::{PgPool, read, write};
use crate::schema::tasks;

/// Stores tasks in the `tasks` table.
#[derive(Clone)]
pub struct PgTaskRepository {
    pool: PgPool,
}

impl PgTaskRepository {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tasks, check_for_backend(Pg), treat_none_as_null = true, treat_none_as_default_value = false)]
pub(crate) struct TaskRow {
    pub(crate) id: Uuid,
    user_id: Uuid,
    title: String,
    description: String,
    priority: String,
    due_at: Option<Timestamp>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    completed_at: Option<Timestamp>,
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
        })
    }
}

/// The folded title, exactly as `tasks_title_trgm_idx` indexes it: ICU's
/// root lower-casing whatever the database's locale, the final sigma merged
/// into σ, as [`fold_for_search`] folds the query (decision 0008).
const FOLDED_TITLE: &str = r#"replace(lower(tasks.title COLLATE "und-x-icu"), 'ς', 'σ')"#;

/// How `q` is looked for in the folded title.
enum TitleMatch {
    /// `LIKE '%…%'`, which the trigram index serves: the query holds a trigram.
    Indexed(String),
    /// `strpos`, on the owner's rows only: the index could not narrow it down.
    Scanned(String),
}

impl TitleMatch {
    fn of(filter: &TaskFilter) -> Option<Self> {
        let folded = fold_for_search(filter.title_contains.as_deref()?);
        Some(if has_trigram(&folded) {
            Self::Indexed(format!("%{}%", escape_like(&folded)))
        } else {
            Self::Scanned(folded)
        })
    }

    /// The predicate, with `$n` standing for its one parameter.
    fn sql(&self, n: usize) -> String {
        match self {
            Self::Indexed(_) => format!("{FOLDED_TITLE} LIKE ${n}"),
            Self::Scanned(_) => format!("strpos({FOLDED_TITLE}, ${n}) > 0"),
        }
    }

    fn into_value(self) -> String {
        match self {
            Self::Indexed(value) | Self::Scanned(value) => value,
        }
    }

    fn expression(self) -> Box<dyn BoxableExpression<tasks::table, Pg, SqlType = Bool>> {
        let (before, after) = match &self {
            Self::Indexed(_) => (format!("{FOLDED_TITLE} LIKE "), ""),
            Self::Scanned(_) => (format!("strpos({FOLDED_TITLE}, "), ") > 0"),
        };
        Box::new(diesel::dsl::sql::<Bool>(&before).bind::<Text, _>(self.into_value()).sql(after))
    }
}

/// The owner's tasks matching `filter`, regardless of page.
fn filtered(owner: UserId, filter: &TaskFilter) -> tasks::BoxedQuery<'static, Pg> {
    let mut query = tasks::table.filter(tasks::user_id.eq(owner.as_uuid())).into_boxed();
    match filter.completed {
        Some(true) => query = query.filter(tasks::completed_at.is_not_null()),
        Some(false) => query = query.filter(tasks::completed_at.is_null()),
        None => {}
    }
    if let Some(title) = TitleMatch::of(filter) {
        query = query.filter(title.expression());
    }
    query
}

/// The statement of one page of tasks, boxed.
pub(crate) type TaskPage = tasks::BoxedQuery<'static, Pg, diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<TaskRow, Pg>>>;

/// One page of the owner's tasks matching `filter`, newest first, after
/// `cursor`: the statement [`PgTaskRepository::list`] runs, `limit` rows.
pub(crate) fn page_query(owner: UserId, filter: &TaskFilter, cursor: Option<Cursor>, limit: i64) -> TaskPage {
    let mut query = filtered(owner, filter);
    if let Some(cursor) = cursor {
        query = query.filter(after(cursor));
    }
    query.select(TaskRow::as_select()).order((tasks::created_at.desc(), tasks::id.desc())).limit(limit)
}

/// The count behind a task list's `meta.total`, read in one scan of at most
/// `TOTAL_CAP + 1` index entries: `count(*)` over a `LIMIT`ed subquery, which
/// diesel cannot build from the boxed filter, so the filter is written once
/// more here, with the same semantics as [`filtered`] (the contract suite
/// checks both against the same rows).
async fn capped_task_count(
    conn: &mut diesel_async::AsyncPgConnection,
    owner: UserId,
    filter: &TaskFilter,
) -> QueryResult<i64> {
    use diesel::sql_types::BigInt;

    #[derive(QueryableByName)]
    struct Counted {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let cap = i64::try_from(parley_kernel::TOTAL_CAP).unwrap_or(i64::MAX);
    let completed = match filter.completed {
        Some(true) => " AND completed_at IS NOT NULL",
        Some(false) => " AND completed_at IS NULL",
        None => "",
    };
    let title = TitleMatch::of(filter);
    let (title_sql, limit_at) = match &title {
        Some(title) => (format!(" AND {}", title.sql(2)), 3),
        None => (String::new(), 2),
    };
    let statement = format!(
        "SELECT count(*) AS n FROM (SELECT 1 FROM tasks WHERE user_id = $1{completed}{title_sql} \
         LIMIT ${limit_at}) AS matching"
    );
    let query = diesel::sql_query(statement).bind::<SqlUuid, _>(owner.as_uuid()).into_boxed();
    let query = match title {
        Some(title) => query.bind::<Text, _>(title.into_value()),
        None => query,
    };
    let counted: Counted = query.bind::<BigInt, _>(cap + 1).get_result(conn).await?;
    Ok(counted.n)
}

/// Makes `%`, `_` and `\` match literally in a `LIKE` pattern (whose escape
/// character is `\` by default).
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Rows strictly after `cursor` in (created_at desc, id desc) order; the row
/// comparison lets PostgreSQL walk the (user_id, created_at, id) index.
fn after(cursor: Cursor) -> Box<dyn BoxableExpression<tasks::table, Pg, SqlType = Bool>> {
    Box::new(
        diesel::dsl::sql::<Bool>("(tasks.created_at, tasks.id) < (")
            .bind::<Timestamptz, _>(cursor.at)
            .sql(", ")
            .bind::<SqlUuid, _>(cursor.id)
            .sql(")"),
    )
}

#[async_trait]
impl TaskRepository for PgTaskRepository {
    async fn create(&self, task: &Task) -> Result<(), StoreError> {
        let row = TaskRow::from(task);
        write(&self.pool, async |conn| {
            diesel::insert_into(tasks::table).values(&row).execute(conn).await?;
            Ok::<_, PgError>(())
        })
        .await?;
        Ok(())
    }

    async fn get(&self, owner: UserId, id: TaskId) -> Result<Task, TaskError> {
        let task = read(&self.pool, move || {
            async move |conn| {
                let row: Option<TaskRow> =
                    tasks::table.find(id.as_uuid()).select(TaskRow::as_select()).first(conn).await.optional()?;
                AccessError::check(row.as_ref().map(|row| row.user_id), owner.as_uuid())?;
                row.ok_or(AccessError::NotFound)?.try_into().map_err(AccessError::Pg)
            }
        })
        .await?;
        Ok(task)
    }

    async fn list(&self, owner: UserId, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>, StoreError> {
        let limit = i64::try_from(page.limit() + 1).map_err(StoreError::unexpected)?;
        let (rows, total) = read(&self.pool, move || {
            async move |conn| {
                let total = capped_task_count(conn, owner, filter).await?;
                let rows: Vec<TaskRow> = page_query(owner, filter, page.cursor(), limit).load(conn).await?;
                Ok::<_, PgError>((rows, total))
            }
        })
        .await?;
        let tasks = rows.into_iter().map(Task::try_from).collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(total).map_err(StoreError::unexpected)?;
        Ok(Page::from_overfetch(tasks, page, total, |task| Cursor { at: task.created_at, id: task.id.as_uuid() }))
    }

    async fn update(&self, owner: UserId, id: TaskId, change: TaskChange, now: Timestamp) -> Result<Task, TaskError> {
        let task = write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                let row: Option<TaskRow> = tasks::table
                    .find(id.as_uuid())
                    .select(TaskRow::as_select())
                    .for_update()
                    .first(conn)
                    .await
                    .optional()?;
                AccessError::check(row.as_ref().map(|row| row.user_id), owner.as_uuid())?;
                let task = Task::try_from(row.ok_or(AccessError::NotFound)?)?.apply(change, now);
                diesel::update(tasks::table.find(id.as_uuid())).set(&TaskRow::from(&task)).execute(conn).await?;
                Ok::<_, AccessError>(task)
            })
            .await
        })
        .await?;
        Ok(task)
    }

    async fn delete(&self, owner: UserId, id: TaskId) -> Result<(), TaskError> {
        write(&self.pool, async |conn| {
            let deleted = diesel::delete(
                tasks::table.filter(tasks::id.eq(id.as_uuid())).filter(tasks::user_id.eq(owner.as_uuid())),
            )
            .execute(conn)
            .await?;
            if deleted == 0 {
                // Nothing of the owner's was deleted: say whether it is missing or someone else's.
                let found: Option<Uuid> =
                    tasks::table.find(id.as_uuid()).select(tasks::user_id).first(conn).await.optional()?;
                AccessError::check(found, owner.as_uuid())?;
            }
            Ok::<_, AccessError>(())
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }

    #[test]
    fn inserting_a_task_reuses_its_prepared_statement() {
        let now = Timestamp::UNIX_EPOCH;
        let row = TaskRow {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            title: "t".to_owned(),
            description: String::new(),
            priority: "low".to_owned(),
            due_at: None,
            created_at: now,
            updated_at: now,
            completed_at: None,
        };
        assert!(crate::statement_is_cached(&diesel::insert_into(tasks::table).values(&row)));
    }
}
