//! `TaskRepository` on PostgreSQL.

use async_trait::async_trait;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, RunQueryDsl};
use parley_kernel::{Cursor, Page, PageRequest, StoreError, TaskId, Timestamp, UserId};
use parley_tasks::{
    Attribution, Decision, Edit, Plan, PlanError, PlanStatus, RevertError, Revision, Task, TaskChange, TaskError,
    TaskFilter, TaskRepository, fold_for_search, has_trigram, revert_steps, undo,
};
use uuid::Uuid;

use crate::error::{AccessError, CallFailure, PgError};
use crate::pool::{PgPool, read, write};
use crate::rows::keyset;
use crate::schema::{plans, reverted_tool_calls, task_revisions, tasks};
use crate::task_rows::{PlanRow, RevisionRow, TaskRow};

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

/// The folded title, a stored column that `tasks_user_title_trgm_idx` indexes
/// (after `user_id`):
/// ICU's root lower-casing whatever the database's locale, the final sigma
/// merged into σ, as [`fold_for_search`] folds the query (decision 0008).
const FOLDED_TITLE: &str = "tasks.title_folded";

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
        query = query.filter(keyset("tasks.created_at, tasks.id", true, cursor));
    }
    query.select(TaskRow::as_select()).order((tasks::created_at.desc(), tasks::id.desc())).limit(limit)
}

/// The count behind a task list's `meta.total`: `count(*)` over at most
/// `TOTAL_CAP + 1` matching rows, so `TOTAL_CAP + 1` when more match. The
/// filter is written here once more, with the same semantics as
/// [`filtered`] (the contract suite checks both against the same rows),
/// because diesel cannot build a `LIMIT`ed subquery from the boxed filter.
///
/// In no particular order: without `q` the planner walks a narrow index of
/// the owner's tasks (`tasks_user_count_idx` or its completed/open half,
/// `user_id` only, deduplicated), index-only, rather than the list's own
/// index of 40-byte keys (0.53 against 0.85 ms for the 10,001 entries past
/// the cap, docs/performance.md); with `q` the candidates come from the
/// trigram index and each is checked in the table, and the narrow indexes
/// are out of its reach. `plans.rs` checks both.
pub(crate) fn capped_count_query(
    owner: UserId,
    filter: &TaskFilter,
) -> diesel::query_builder::BoxedSqlQuery<'static, Pg, diesel::query_builder::SqlQuery> {
    let cap = i64::try_from(parley_kernel::TOTAL_CAP).unwrap_or(i64::MAX);
    let completed = match filter.completed {
        Some(true) => " AND completed_at IS NOT NULL",
        Some(false) => " AND completed_at IS NULL",
        None => "",
    };
    let title = TitleMatch::of(filter);
    // `version > 0`, true of every task, is what makes the narrow indexes
    // (partial on it) usable here, and only here (migration 000070).
    let (title_sql, limit_at) = match &title {
        Some(title) => (format!(" AND {}", title.sql(2)), 3),
        None => (" AND version > 0".to_owned(), 2),
    };
    let statement = format!(
        "SELECT count(*) AS n FROM (SELECT 1 FROM tasks WHERE user_id = $1{completed}{title_sql} \
         LIMIT ${limit_at}) AS matching"
    );
    let query = diesel::sql_query(statement).into_boxed().bind::<SqlUuid, _>(owner.as_uuid());
    let query = match title {
        Some(title) => query.bind::<Text, _>(title.into_value()),
        None => query,
    };
    query.bind::<BigInt, _>(cap + 1)
}

/// Runs [`capped_count_query`].
async fn capped_task_count(
    mut conn: &diesel_async::AsyncPgConnection,
    owner: UserId,
    filter: &TaskFilter,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Counted {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let counted: Counted = capped_count_query(owner, filter).get_result(&mut conn).await?;
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

/// Why a task write did not happen: a refusal the port names, or the store's failure.
#[derive(Debug)]
enum Refusal {
    NotFound,
    Forbidden,
    Stale(u32, Box<Task>),
    AlreadyReverted,
    Conflict(Vec<TaskId>),
    Decided,
    Expired,
    Pg(PgError),
}

impl Refusal {
    /// `Stale` unless `task` is at the version `edit` asks for (if any).
    fn check_version(edit: &Edit, task: &Task) -> Result<(), Self> {
        match edit.if_version {
            Some(expected) if expected != task.version => Err(Self::Stale(expected, Box::new(task.clone()))),
            _ => Ok(()),
        }
    }
}

impl From<PgError> for Refusal {
    fn from(error: PgError) -> Self {
        Self::Pg(error)
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(error: diesel::result::Error) -> Self {
        Self::Pg(PgError::Query(error))
    }
}

impl From<AccessError> for Refusal {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::NotFound => Self::NotFound,
            AccessError::Forbidden => Self::Forbidden,
            AccessError::Pg(error) => Self::Pg(error),
        }
    }
}

impl CallFailure for Refusal {
    fn pg(&self) -> Option<&PgError> {
        match self {
            Self::Pg(error) => Some(error),
            _ => None,
        }
    }

    fn pg_mut(&mut self) -> Option<&mut PgError> {
        match self {
            Self::Pg(error) => Some(error),
            _ => None,
        }
    }
}

impl From<Refusal> for TaskError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound
            | Refusal::AlreadyReverted
            | Refusal::Conflict(_)
            | Refusal::Decided
            | Refusal::Expired => Self::NotFound,
            Refusal::Forbidden => Self::Forbidden,
            Refusal::Stale(expected, current) => Self::Stale { expected, current },
            Refusal::Pg(error) => Self::Store(error.into()),
        }
    }
}

impl From<Refusal> for RevertError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound | Refusal::Forbidden | Refusal::Stale(..) | Refusal::Decided | Refusal::Expired => {
                Self::NotFound
            }
            Refusal::AlreadyReverted => Self::AlreadyReverted,
            Refusal::Conflict(ids) => Self::Conflict(ids),
            Refusal::Pg(error) => Self::Store(error.into()),
        }
    }
}

impl From<Refusal> for PlanError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Decided | Refusal::AlreadyReverted => Self::Decided,
            Refusal::Expired => Self::Expired,
            Refusal::Conflict(ids) => Self::Conflict(ids),
            Refusal::NotFound | Refusal::Forbidden | Refusal::Stale(..) => Self::NotFound,
            Refusal::Pg(error) => Self::Store(error.into()),
        }
    }
}

/// A task write and its revision as one statement (a data-modifying CTE):
/// atomic, one round trip, and a fixed text, so that it is prepared once per
/// connection (`sql_query` is never cached: it was parsed and planned on
/// every call).
struct WithRevision<'a> {
    /// `true`: INSERT the task; `false`: UPDATE it.
    create: bool,
    task: &'a TaskRow,
    revision: &'a RevisionRow,
}

impl diesel::query_builder::QueryId for WithRevision<'_> {
    type QueryId = ();
    // Two texts (create, update); the cache is keyed by the SQL when the id is not static.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl diesel::query_builder::QueryFragment<Pg> for WithRevision<'_> {
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use diesel::sql_types::{Integer, Jsonb, Nullable, Text};

        let (task, revision) = (self.task, self.revision);
        if self.create {
            out.push_sql(
                "WITH written AS (INSERT INTO tasks (id, user_id, title, description, priority, due_at, \
                 completed_at, updated_at, version, created_at) VALUES (",
            );
        } else {
            out.push_sql("WITH written AS (UPDATE tasks SET (id, user_id, title, description, priority, due_at, completed_at, updated_at, version) = (");
        }
        out.push_bind_param::<SqlUuid, _>(&task.id)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&task.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&task.title)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&task.description)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&task.priority)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&task.due_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&task.completed_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&task.updated_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&task.version)?;
        if self.create {
            out.push_sql(", ");
            out.push_bind_param::<Timestamptz, _>(&task.created_at)?;
            out.push_sql(")) ");
        } else {
            out.push_sql(") WHERE id = ");
            out.push_bind_param::<SqlUuid, _>(&task.id)?;
            out.push_sql(") ");
        }
        out.push_sql(
            "INSERT INTO task_revisions (id, task_id, user_id, version, action, changes, actor, origin, \
             conversation_id, tool_call_id, before, created_at) VALUES (",
        );
        out.push_bind_param::<SqlUuid, _>(&revision.id)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&revision.task_id)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&revision.user_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&revision.version)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&revision.action)?;
        out.push_sql(", ");
        out.push_bind_param::<Jsonb, _>(&revision.changes)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&revision.actor)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&revision.origin)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&revision.conversation_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&revision.tool_call_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Jsonb>, _>(&revision.before)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&revision.created_at)?;
        out.push_sql(")");
        Ok(())
    }
}

async fn create_with_revision(
    conn: &mut diesel_async::AsyncPgConnection,
    task: &TaskRow,
    revision: &RevisionRow,
) -> QueryResult<()> {
    WithRevision { create: true, task, revision }.execute(conn).await.map(drop)
}

/// Rewrites the (locked) task and inserts its revision in one statement.
async fn update_with_revision(
    conn: &mut diesel_async::AsyncPgConnection,
    task: &TaskRow,
    revision: &RevisionRow,
) -> QueryResult<()> {
    WithRevision { create: false, task, revision }.execute(conn).await.map(drop)
}

async fn record(conn: &mut diesel_async::AsyncPgConnection, revision: &Revision) -> QueryResult<()> {
    diesel::insert_into(task_revisions::table).values(RevisionRow::from(revision)).execute(conn).await.map(drop)
}

/// The task with this id, locked for the rest of the transaction, if it is `owner`'s.
async fn locked(conn: &mut diesel_async::AsyncPgConnection, owner: UserId, id: TaskId) -> Result<Task, Refusal> {
    let row: Option<TaskRow> =
        tasks::table.find(id.as_uuid()).select(TaskRow::as_select()).for_update().first(conn).await.optional()?;
    AccessError::check(row.as_ref().map(|row| row.user_id), owner.as_uuid())?;
    Ok(Task::try_from(row.ok_or(AccessError::NotFound)?)?)
}

/// Applies every change of `plan`, or none: a task changed since the plan is a conflict.
async fn apply_plan(conn: &mut diesel_async::AsyncPgConnection, plan: &Plan, now: Timestamp) -> Result<(), Refusal> {
    let mut conflicts = Vec::new();
    for change in &plan.changes {
        let by = Attribution::assistant(plan.owner, plan.origin, plan.conversation, change.tool_call_id.clone());
        let Some(before) = &change.before else {
            if let Some(new) = &change.after {
                let new = Task { created_at: now, updated_at: now, ..new.clone() };
                diesel::insert_into(tasks::table).values(TaskRow::from(&new)).execute(conn).await?;
                record(conn, &Revision::record(None, None, Some(&new), &by, now)).await?;
            }
            continue;
        };
        let row: Option<TaskRow> = tasks::table
            .find(before.id.as_uuid())
            .select(TaskRow::as_select())
            .for_update()
            .first(conn)
            .await
            .optional()?;
        let current = match row.map(Task::try_from).transpose()? {
            Some(task) if task.owner == plan.owner && task.version == before.version => task,
            _ => {
                conflicts.push(before.id);
                continue;
            }
        };
        match &change.after {
            None => {
                diesel::delete(tasks::table.find(current.id.as_uuid())).execute(conn).await?;
                record(conn, &Revision::record(None, Some(&current), None, &by, now)).await?;
            }
            Some(after) => {
                let after = Task { version: current.version + 1, updated_at: now, ..after.clone() };
                diesel::update(tasks::table.find(current.id.as_uuid()))
                    .set(&TaskRow::from(&after))
                    .execute(conn)
                    .await?;
                record(conn, &Revision::record(None, Some(&current), Some(&after), &by, now)).await?;
            }
        }
    }
    if conflicts.is_empty() { Ok(()) } else { Err(Refusal::Conflict(conflicts)) }
}

#[async_trait]
impl TaskRepository for PgTaskRepository {
    #[tracing::instrument(skip_all, fields(task_id = %task.id))]
    async fn create(&self, task: &Task, by: &Attribution) -> Result<(), StoreError> {
        let row = TaskRow::from(task);
        let revision = RevisionRow::from(&Revision::record(None, None, Some(task), by, task.created_at));
        write(&self.pool, async |conn| create_with_revision(conn, &row, &revision).await.map_err(PgError::from))
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
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

    #[tracing::instrument(skip_all)]
    async fn list(&self, owner: UserId, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>, StoreError> {
        let limit = i64::try_from(page.limit() + 1).map_err(StoreError::unexpected)?;
        let (rows, total) = if filter.title_contains.is_some() {
            // A search's count is most of its cost (10,001 candidates from
            // the trigram index, each checked in the table, past the cap):
            // it runs beside the page, on a second connection.
            let page_rows = read(&self.pool, || {
                async |conn| {
                    page_query(owner, filter, page.cursor(), limit).load::<TaskRow>(conn).await.map_err(PgError::from)
                }
            });
            let count =
                read(&self.pool, || async |conn| capped_task_count(conn, owner, filter).await.map_err(PgError::from));
            let (rows, total) = tokio::join!(page_rows, count);
            (rows?, total?)
        } else {
            read(&self.pool, move || {
                async move |conn| {
                    // Both statements sent at once (diesel-async pipelines
                    // statements polled together on a shared connection): the
                    // server runs them one after the other, without a round
                    // trip between them.
                    let conn = &*conn;
                    let (rows, total) = tokio::join!(
                        page_query(owner, filter, page.cursor(), limit).load::<TaskRow>(&mut &*conn),
                        capped_task_count(conn, owner, filter),
                    );
                    Ok::<_, PgError>((rows?, total?))
                }
            })
            .await?
        };
        let tasks = rows.into_iter().map(Task::try_from).collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(total).map_err(StoreError::unexpected)?;
        Ok(Page::from_overfetch(tasks, page, total, |task| Cursor { at: task.created_at, id: task.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn update(&self, id: TaskId, change: TaskChange, edit: &Edit) -> Result<Task, TaskError> {
        let task = write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                let current = locked(conn, edit.by.user, id).await?;
                Refusal::check_version(edit, &current)?;
                let task = current.clone().apply(change, edit.at);
                let revision =
                    RevisionRow::from(&Revision::record(None, Some(&current), Some(&task), &edit.by, edit.at));
                update_with_revision(conn, &TaskRow::from(&task), &revision).await?;
                Ok::<_, Refusal>(task)
            })
            .await
        })
        .await?;
        Ok(task)
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn delete(&self, id: TaskId, edit: &Edit) -> Result<Task, TaskError> {
        let task = write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                let current = locked(conn, edit.by.user, id).await?;
                Refusal::check_version(edit, &current)?;
                diesel::delete(tasks::table.find(id.as_uuid())).execute(conn).await?;
                record(conn, &Revision::record(None, Some(&current), None, &edit.by, edit.at)).await?;
                Ok::<_, Refusal>(current)
            })
            .await
        })
        .await?;
        Ok(task)
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn revisions(&self, owner: UserId, id: TaskId, page: &PageRequest) -> Result<Page<Revision>, TaskError> {
        let limit = i64::try_from(page.limit() + 1).map_err(StoreError::unexpected)?;
        let (rows, total) = read(&self.pool, move || {
            async move |conn| {
                let mut found: Option<Uuid> =
                    tasks::table.find(id.as_uuid()).select(tasks::user_id).first(conn).await.optional()?;
                if found.is_none() {
                    found = task_revisions::table
                        .filter(task_revisions::task_id.eq(id.as_uuid()))
                        .select(task_revisions::user_id)
                        .first(conn)
                        .await
                        .optional()?;
                }
                AccessError::check(found, owner.as_uuid())?;
                let all = || {
                    task_revisions::table
                        .filter(task_revisions::task_id.eq(id.as_uuid()))
                        .filter(task_revisions::user_id.eq(owner.as_uuid()))
                        .into_boxed()
                };
                let total: i64 =
                    capped_count!(all(), (task_revisions::created_at.desc(), task_revisions::id.desc()), conn);
                let mut query = all();
                if let Some(cursor) = page.cursor() {
                    query = query.filter(keyset("task_revisions.created_at, task_revisions.id", true, cursor));
                }
                let rows: Vec<RevisionRow> = query
                    .order((task_revisions::created_at.desc(), task_revisions::id.desc()))
                    .limit(limit)
                    .select(RevisionRow::as_select())
                    .load(conn)
                    .await?;
                Ok::<_, AccessError>((rows, total))
            }
        })
        .await?;
        let revisions =
            rows.into_iter().map(Revision::try_from).collect::<Result<Vec<_>, _>>().map_err(StoreError::from)?;
        let total = u64::try_from(total).map_err(StoreError::unexpected)?;
        Ok(Page::from_overfetch(revisions, page, total, |r| Cursor { at: r.created_at, id: r.id }))
    }

    #[tracing::instrument(skip_all)]
    async fn revert(&self, tool_call: &str, edit: &Edit) -> Result<Vec<TaskId>, RevertError> {
        let owner = edit.by.user;
        let touched = write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                let rows: Vec<RevisionRow> = task_revisions::table
                    .filter(task_revisions::user_id.eq(owner.as_uuid()))
                    .filter(task_revisions::tool_call_id.eq(tool_call))
                    .order((task_revisions::created_at.asc(), task_revisions::id.asc()))
                    .select(RevisionRow::as_select())
                    .load(conn)
                    .await?;
                if rows.is_empty() {
                    return Err(Refusal::NotFound);
                }
                // First, so that a concurrent second revert waits on this row and then finds it.
                let claimed = diesel::insert_into(reverted_tool_calls::table)
                    .values((
                        reverted_tool_calls::user_id.eq(owner.as_uuid()),
                        reverted_tool_calls::tool_call_id.eq(tool_call),
                        reverted_tool_calls::reverted_at.eq(edit.at),
                    ))
                    .on_conflict_do_nothing()
                    .execute(conn)
                    .await?;
                if claimed == 0 {
                    return Err(Refusal::AlreadyReverted);
                }
                let revisions = rows.into_iter().map(Revision::try_from).collect::<Result<Vec<_>, _>>()?;
                let mut ids: Vec<Uuid> = revisions.iter().map(|r| r.task_id.as_uuid()).collect();
                ids.sort_unstable();
                ids.dedup();
                let current: Vec<TaskRow> = tasks::table
                    .filter(tasks::id.eq_any(&ids))
                    .order(tasks::id)
                    .select(TaskRow::as_select())
                    .for_update()
                    .load(conn)
                    .await?;
                let mut current = current
                    .into_iter()
                    .map(|row| Task::try_from(row).map(|task| (task.id, task)))
                    .collect::<Result<std::collections::HashMap<_, _>, _>>()?;
                let latest: Vec<(Uuid, Option<i32>)> = task_revisions::table
                    .filter(task_revisions::task_id.eq_any(&ids))
                    .group_by(task_revisions::task_id)
                    .select((task_revisions::task_id, diesel::dsl::max(task_revisions::version)))
                    .load(conn)
                    .await?;
                let latest: std::collections::HashMap<TaskId, u32> = latest
                    .into_iter()
                    .filter_map(|(id, version)| Some((TaskId::from_uuid(id), u32::try_from(version?).ok()?)))
                    .collect();
                let steps = revert_steps(&revisions, |id| latest.get(&id).copied()).map_err(|e| match e {
                    RevertError::Conflict(ids) => Refusal::Conflict(ids),
                    other => Refusal::Pg(PgError::corrupt(other)),
                })?;
                let mut touched = Vec::new();
                for step in steps {
                    let now = current.remove(&step.task_id);
                    let version = latest.get(&step.task_id).copied().unwrap_or_default();
                    let (after, action) = undo(step.target, now.as_ref(), version, edit.at);
                    match (&now, &after) {
                        (None, None) => continue,
                        (Some(_), None) => {
                            diesel::delete(tasks::table.find(step.task_id.as_uuid())).execute(conn).await?;
                        }
                        (None, Some(task)) => {
                            diesel::insert_into(tasks::table).values(TaskRow::from(task)).execute(conn).await?;
                        }
                        (Some(_), Some(task)) => {
                            diesel::update(tasks::table.find(step.task_id.as_uuid()))
                                .set(&TaskRow::from(task))
                                .execute(conn)
                                .await?;
                        }
                    }
                    let mut revision = Revision::record(Some(action), now.as_ref(), after.as_ref(), &edit.by, edit.at);
                    revision.version = version + 1;
                    record(conn, &revision).await?;
                    touched.push(step.task_id);
                }
                Ok::<_, Refusal>(touched)
            })
            .await
        })
        .await?;
        Ok(touched)
    }

    async fn save_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let row = PlanRow::from(plan);
        write(&self.pool, async |conn| {
            diesel::insert_into(plans::table).values(&row).execute(conn).await.map(drop).map_err(PgError::from)
        })
        .await?;
        Ok(())
    }

    async fn decide_plan(
        &self,
        owner: UserId,
        id: Uuid,
        decision: Decision,
        now: Timestamp,
    ) -> Result<Plan, PlanError> {
        let plan = write(&self.pool, async |conn| {
            conn.transaction(async move |conn| {
                let row: Option<PlanRow> =
                    plans::table.find(id).select(PlanRow::as_select()).for_update().first(conn).await.optional()?;
                let mut plan = match row {
                    Some(row) if row.user_id == owner.as_uuid() => Plan::try_from(row)?,
                    _ => return Err(Refusal::NotFound),
                };
                if plan.status != PlanStatus::Pending {
                    return Err(Refusal::Decided);
                }
                if now > plan.expires_at {
                    return Err(Refusal::Expired);
                }
                plan.status = match decision {
                    Decision::Reject => PlanStatus::Rejected,
                    Decision::Approve => {
                        apply_plan(conn, &plan, now).await?;
                        PlanStatus::Approved
                    }
                };
                diesel::update(plans::table.find(id))
                    .set((plans::status.eq(plan.status.as_str()), plans::decided_at.eq(Some(now))))
                    .execute(conn)
                    .await?;
                Ok::<_, Refusal>(plan)
            })
            .await
        })
        .await?;
        Ok(plan)
    }

    async fn reverted(&self, owner: UserId, tool_calls: &[String]) -> Result<Vec<String>, StoreError> {
        let reverted = read(&self.pool, move || {
            async move |conn| {
                reverted_tool_calls::table
                    .filter(reverted_tool_calls::user_id.eq(owner.as_uuid()))
                    .filter(reverted_tool_calls::tool_call_id.eq_any(tool_calls))
                    .select(reverted_tool_calls::tool_call_id)
                    .load::<String>(conn)
                    .await
                    .map_err(PgError::from)
            }
        })
        .await?;
        Ok(reverted)
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
            version: 1,
        };
        assert!(crate::statement_is_cached(&diesel::insert_into(tasks::table).values(&row)));
        let task = Task::try_from(row).unwrap_or_else(|e| panic!("{e:?}"));
        let by = Attribution::user(task.owner, parley_tasks::Origin::Rest);
        let revision = RevisionRow::from(&Revision::record(None, None, Some(&task), &by, now));
        let row = TaskRow::from(&task);
        for create in [true, false] {
            let write = WithRevision { create, task: &row, revision: &revision };
            assert!(crate::statement_is_cached(&write), "a task write with its revision is prepared once");
        }
    }
}
