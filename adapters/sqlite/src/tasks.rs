//! `TaskRepository` on SQLite.

use async_trait::async_trait;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use diesel::sqlite::Sqlite;
use parley_kernel::{Cursor, Page, PageRequest, StoreError, TaskId, UserId};
use parley_tasks::{
    Attribution, Decision, Edit, Plan, PlanError, PlanStatus, RevertError, Revision, Task, TaskChange, TaskError,
    TaskFilter, TaskRepository, changes_from_stored, changes_to_json, fold_for_search, revert_steps, undo,
};

use crate::SqliteStore;
use crate::error::{AccessError, SqliteError};
use crate::rows::{corrupt, keyset, to_micros};
use crate::schema::{plans, reverted_tool_calls, task_revisions, tasks};
use crate::task_rows::{RevisionRow, TaskRow};

/// Each user's tasks in the `tasks` table.
pub struct SqliteTaskRepository {
    store: SqliteStore,
}

impl SqliteTaskRepository {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

/// How a list looks for `q`, a substring of the folded title (decision
/// 0008); `instr` decides in every case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Search {
    /// No `q`.
    Nothing,
    /// Checked on the owner's rows, newest first, through the owner's index:
    /// a query shorter than three characters, which no trigram can find, or
    /// one whose trigram candidates are too many to be worth reading first
    /// (the owner's newest rows then fill a page soonest, and the count stops
    /// at the cap).
    Scan(String),
    /// The trigram index `tasks_title_search` found these candidates (their
    /// rowids as a JSON array, at most `TOTAL_CAP`), and they drive the read.
    Indexed { folded: String, candidates: String },
}

/// The phrase an FTS5 trigram `MATCH` reads as the substring `folded`.
fn trigram_phrase(folded: &str) -> String {
    format!("\"{}\"", folded.replace('"', "\"\""))
}

/// Decides how `filter`'s `q` is looked for. The trigram index is read once
/// per list, at most `TOTAL_CAP + 1` entries (FTS5 stops at the `LIMIT`).
pub(crate) fn search(conn: &mut SqliteConnection, filter: &TaskFilter) -> QueryResult<Search> {
    #[derive(QueryableByName)]
    struct Candidate {
        #[diesel(sql_type = BigInt)]
        rowid: i64,
    }
    let Some(text) = &filter.title_contains else { return Ok(Search::Nothing) };
    let folded = fold_for_search(text);
    if folded.chars().count() < 3 {
        return Ok(Search::Scan(folded));
    }
    let cap = i64::try_from(parley_kernel::TOTAL_CAP).unwrap_or(i64::MAX);
    let candidates: Vec<Candidate> =
        diesel::sql_query("SELECT rowid FROM tasks_title_search WHERE tasks_title_search MATCH ? LIMIT ?")
            .bind::<Text, _>(trigram_phrase(&folded))
            .bind::<BigInt, _>(cap + 1)
            .load(conn)?;
    if i64::try_from(candidates.len()).unwrap_or(i64::MAX) > cap {
        return Ok(Search::Scan(folded));
    }
    let rowids: Vec<String> = candidates.iter().map(|candidate| candidate.rowid.to_string()).collect();
    Ok(Search::Indexed { folded, candidates: format!("[{}]", rowids.join(",")) })
}

/// The owner's tasks matching `filter`, looked for as `search` says.
fn matching(owner: &str, filter: &TaskFilter, search: &Search) -> tasks::BoxedQuery<'static, Sqlite> {
    let mut query = tasks::table.into_boxed();
    if let Search::Indexed { candidates, .. } = search {
        // The candidates drive: `+` keeps the owner's and the completion
        // indexes out of the plan, which would walk all the owner's rows.
        query = query
            .filter(
                sql::<Bool>("tasks.rowid IN (SELECT value FROM json_each(")
                    .bind::<Text, _>(candidates.clone())
                    .sql("))"),
            )
            .filter(sql::<Bool>("+tasks.user_id = ").bind::<Text, _>(owner.to_owned()));
        match filter.completed {
            Some(true) => query = query.filter(sql::<Bool>("+tasks.completed_at IS NOT NULL")),
            Some(false) => query = query.filter(sql::<Bool>("+tasks.completed_at IS NULL")),
            None => {}
        }
    } else {
        query = query.filter(tasks::user_id.eq(owner.to_owned()));
        match filter.completed {
            Some(true) => query = query.filter(tasks::completed_at.is_not_null()),
            Some(false) => query = query.filter(tasks::completed_at.is_null()),
            None => {}
        }
    }
    if let Search::Scan(folded) | Search::Indexed { folded, .. } = search {
        query = query.filter(sql::<Bool>("instr(tasks.title_folded, ").bind::<Text, _>(folded.clone()).sql(") > 0"));
    }
    query
}

/// The statement of one page of tasks, boxed.
pub(crate) type TaskPage =
    tasks::BoxedQuery<'static, Sqlite, diesel::dsl::SqlTypeOf<diesel::dsl::AsSelect<TaskRow, Sqlite>>>;

/// One page of the owner's tasks matching `filter`, newest first, after
/// `cursor`: the statement `list` runs, `limit` rows.
pub(crate) fn page_query(
    owner: &str,
    filter: &TaskFilter,
    search: &Search,
    cursor: Option<Cursor>,
    limit: i64,
) -> TaskPage {
    let mut query = matching(owner, filter, search);
    if let Some(cursor) = cursor {
        query = query.filter(keyset("tasks.created_at, tasks.id", true, cursor));
    }
    query.select(TaskRow::as_select()).order((tasks::created_at.desc(), tasks::id.desc())).limit(limit)
}

/// The task `id`, if `owner` owns it.
fn owned(conn: &mut SqliteConnection, id: &str, owner: &str) -> Result<TaskRow, AccessError> {
    let row: Option<TaskRow> = tasks::table.find(id).select(TaskRow::as_select()).first(conn).optional()?;
    AccessError::check(row.as_ref().map(|row| row.user_id.as_str()), owner)?;
    row.ok_or(AccessError::NotFound)
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
    Sqlite(SqliteError),
}

impl From<SqliteError> for Refusal {
    fn from(error: SqliteError) -> Self {
        Self::Sqlite(error)
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(error: diesel::result::Error) -> Self {
        Self::Sqlite(error.into())
    }
}

impl From<crate::rows::CorruptRow> for Refusal {
    fn from(error: crate::rows::CorruptRow) -> Self {
        Self::Sqlite(error.into())
    }
}

impl From<AccessError> for Refusal {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::NotFound => Self::NotFound,
            AccessError::Forbidden => Self::Forbidden,
            AccessError::Sqlite(error) => Self::Sqlite(error),
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
            Refusal::Sqlite(error) => Self::Store(error.into()),
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
            Refusal::Sqlite(error) => Self::Store(error.into()),
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
            Refusal::Sqlite(error) => Self::Store(error.into()),
        }
    }
}

/// Applies every change of `plan`, or none: a task changed since the plan is a conflict.
fn apply_plan(conn: &mut SqliteConnection, plan: &Plan, now: parley_kernel::Timestamp) -> Result<(), Refusal> {
    let mut conflicts = Vec::new();
    for change in &plan.changes {
        let by = Attribution::assistant(plan.owner, plan.origin, plan.conversation, change.tool_call_id.clone());
        let Some(before) = &change.before else {
            if let Some(new) = &change.after {
                let new = Task { created_at: now, updated_at: now, ..new.clone() };
                diesel::insert_into(tasks::table).values(TaskRow::from_task(&new)).execute(conn)?;
                record(conn, &Revision::record(None, None, Some(&new), &by, now))?;
            }
            continue;
        };
        let key = before.id.to_string();
        let row: Option<TaskRow> = tasks::table.find(&key).select(TaskRow::as_select()).first(conn).optional()?;
        let current = match row.map(TaskRow::into_task).transpose()? {
            Some(task) if task.owner == plan.owner && task.version == before.version => task,
            _ => {
                conflicts.push(before.id);
                continue;
            }
        };
        match &change.after {
            None => {
                diesel::delete(tasks::table.find(&key)).execute(conn)?;
                record(conn, &Revision::record(None, Some(&current), None, &by, now))?;
            }
            Some(after) => {
                let after = Task { version: current.version + 1, updated_at: now, ..after.clone() };
                diesel::update(tasks::table.find(&key)).set(TaskRow::from_task(&after).changes()).execute(conn)?;
                record(conn, &Revision::record(None, Some(&current), Some(&after), &by, now))?;
            }
        }
    }
    if conflicts.is_empty() { Ok(()) } else { Err(Refusal::Conflict(conflicts)) }
}

/// The owner's task with this id, at the version `edit` asks for.
fn current(conn: &mut SqliteConnection, id: &str, edit: &Edit) -> Result<Task, Refusal> {
    let task = owned(conn, id, &edit.by.user.to_string())?.into_task()?;
    match edit.if_version {
        Some(expected) if expected != task.version => Err(Refusal::Stale(expected, Box::new(task))),
        _ => Ok(task),
    }
}

fn record(conn: &mut SqliteConnection, revision: &Revision) -> QueryResult<()> {
    diesel::insert_into(task_revisions::table).values(RevisionRow::from_revision(revision)).execute(conn).map(drop)
}

#[async_trait]
impl TaskRepository for SqliteTaskRepository {
    #[tracing::instrument(skip_all, fields(task_id = %task.id))]
    async fn create(&self, task: &Task, by: &Attribution) -> Result<(), StoreError> {
        let row = TaskRow::from_task(task);
        let revision = Revision::record(None, None, Some(task), by, task.created_at);
        self.store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    diesel::insert_into(tasks::table).values(&row).execute(conn)?;
                    record(conn, &revision)?;
                    Ok::<_, SqliteError>(())
                })
            })
            .await?;
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn get(&self, owner: UserId, id: TaskId) -> Result<Task, TaskError> {
        let (key, owner) = (id.to_string(), owner.to_string());
        let task = self.store.run(move |conn| Ok::<_, AccessError>(owned(conn, &key, &owner)?.into_task()?)).await?;
        Ok(task)
    }

    #[tracing::instrument(skip_all)]
    async fn list(&self, owner: UserId, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>, StoreError> {
        let (owner, filter, cursor) = (owner.to_string(), filter.clone(), page.cursor());
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    let search = search(conn, &filter)?;
                    // Indexed, the candidates are at most the cap: one count, no probe.
                    let total: i64 = match &search {
                        Search::Indexed { .. } => matching(&owner, &filter, &search).count().get_result(conn)?,
                        Search::Nothing | Search::Scan(_) => capped_count!(matching(&owner, &filter, &search), conn),
                    };
                    let rows: Vec<TaskRow> = page_query(&owner, &filter, &search, cursor, fetch).load(conn)?;
                    Ok::<_, SqliteError>((rows, total))
                })
            })
            .await?;
        let tasks = rows.into_iter().map(TaskRow::into_task).collect::<Result<Vec<_>, _>>()?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(tasks, page, total, |task| Cursor { at: task.created_at, id: task.id.as_uuid() }))
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn update(&self, id: TaskId, change: TaskChange, edit: &Edit) -> Result<Task, TaskError> {
        let (key, edit) = (id.to_string(), edit.clone());
        let updated = self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    let before = current(conn, &key, &edit)?;
                    let task = before.clone().apply(change, edit.at);
                    diesel::update(tasks::table.find(&key)).set(TaskRow::from_task(&task).changes()).execute(conn)?;
                    record(conn, &Revision::record(None, Some(&before), Some(&task), &edit.by, edit.at))?;
                    Ok::<_, Refusal>(task)
                })
            })
            .await?;
        Ok(updated)
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn delete(&self, id: TaskId, edit: &Edit) -> Result<Task, TaskError> {
        let (key, edit) = (id.to_string(), edit.clone());
        let deleted = self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    let before = current(conn, &key, &edit)?;
                    diesel::delete(tasks::table.find(&key)).execute(conn)?;
                    record(conn, &Revision::record(None, Some(&before), None, &edit.by, edit.at))?;
                    Ok::<_, Refusal>(before)
                })
            })
            .await?;
        Ok(deleted)
    }

    #[tracing::instrument(skip_all, fields(task_id = %id))]
    async fn revisions(&self, owner: UserId, id: TaskId, page: &PageRequest) -> Result<Page<Revision>, TaskError> {
        let (key, owner, cursor) = (id.to_string(), owner.to_string(), page.cursor());
        let fetch = i64::try_from(page.limit() + 1).unwrap_or(i64::MAX);
        let (rows, total) = self
            .store
            .run(move |conn| {
                conn.transaction(|conn| {
                    let mut found: Option<String> =
                        tasks::table.find(&key).select(tasks::user_id).first(conn).optional()?;
                    if found.is_none() {
                        found = task_revisions::table
                            .filter(task_revisions::task_id.eq(&key))
                            .select(task_revisions::user_id)
                            .first(conn)
                            .optional()?;
                    }
                    AccessError::check(found.as_deref(), &owner)?;
                    let all = || {
                        task_revisions::table
                            .filter(task_revisions::task_id.eq(key.clone()))
                            .filter(task_revisions::user_id.eq(owner.clone()))
                            .into_boxed()
                    };
                    let total: i64 = capped_count!(all(), conn);
                    let mut query = all().select(RevisionRow::as_select());
                    if let Some(cursor) = cursor {
                        query = query.filter(keyset("task_revisions.created_at, task_revisions.id", true, cursor));
                    }
                    let rows: Vec<RevisionRow> = query
                        .order((task_revisions::created_at.desc(), task_revisions::id.desc()))
                        .limit(fetch)
                        .load(conn)?;
                    Ok::<_, AccessError>((rows, total))
                })
            })
            .await?;
        let revisions = rows.into_iter().map(RevisionRow::into_revision).collect::<Result<Vec<_>, _>>();
        let revisions = revisions.map_err(StoreError::from)?;
        let total = u64::try_from(total).unwrap_or_default();
        Ok(Page::from_overfetch(revisions, page, total, |r| Cursor { at: r.created_at, id: r.id }))
    }

    #[tracing::instrument(skip_all)]
    async fn revert(&self, tool_call: &str, edit: &Edit) -> Result<Vec<TaskId>, RevertError> {
        let (tool_call, edit) = (tool_call.to_owned(), edit.clone());
        let reverted = self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    let owner = edit.by.user.to_string();
                    let rows: Vec<RevisionRow> = task_revisions::table
                        .filter(task_revisions::user_id.eq(&owner))
                        .filter(task_revisions::tool_call_id.eq(&tool_call))
                        .order((task_revisions::created_at.asc(), task_revisions::id.asc()))
                        .select(RevisionRow::as_select())
                        .load(conn)?;
                    if rows.is_empty() {
                        return Err(Refusal::NotFound);
                    }
                    let claimed = diesel::insert_or_ignore_into(reverted_tool_calls::table)
                        .values((
                            reverted_tool_calls::user_id.eq(&owner),
                            reverted_tool_calls::tool_call_id.eq(&tool_call),
                            reverted_tool_calls::reverted_at.eq(to_micros(edit.at)),
                        ))
                        .execute(conn)?;
                    if claimed == 0 {
                        return Err(Refusal::AlreadyReverted);
                    }
                    let revisions = rows.into_iter().map(RevisionRow::into_revision).collect::<Result<Vec<_>, _>>()?;
                    let mut ids: Vec<String> = revisions.iter().map(|r| r.task_id.to_string()).collect();
                    ids.sort_unstable();
                    ids.dedup();
                    let rows: Vec<TaskRow> =
                        tasks::table.filter(tasks::id.eq_any(&ids)).select(TaskRow::as_select()).load(conn)?;
                    let mut now = std::collections::HashMap::new();
                    for row in rows {
                        let task = row.into_task()?;
                        now.insert(task.id, task);
                    }
                    let latest: Vec<(String, Option<i32>)> = task_revisions::table
                        .filter(task_revisions::task_id.eq_any(&ids))
                        .group_by(task_revisions::task_id)
                        .select((task_revisions::task_id, diesel::dsl::max(task_revisions::version)))
                        .load(conn)?;
                    let latest: std::collections::HashMap<TaskId, u32> = latest
                        .into_iter()
                        .filter_map(|(id, version)| Some((id.parse().ok()?, u32::try_from(version?).ok()?)))
                        .collect();
                    let steps = revert_steps(&revisions, |id| latest.get(&id).copied()).map_err(|e| match e {
                        RevertError::Conflict(ids) => Refusal::Conflict(ids),
                        other => Refusal::Sqlite(corrupt(other).into()),
                    })?;
                    let mut touched = Vec::new();
                    for step in steps {
                        let key = step.task_id.to_string();
                        let before = now.remove(&step.task_id);
                        let version = latest.get(&step.task_id).copied().unwrap_or_default();
                        let (after, action) = undo(step.target, before.as_ref(), version, edit.at);
                        match (&before, &after) {
                            (None, None) => continue,
                            (Some(_), None) => {
                                diesel::delete(tasks::table.find(&key)).execute(conn)?;
                            }
                            (None, Some(task)) => {
                                diesel::insert_into(tasks::table).values(TaskRow::from_task(task)).execute(conn)?;
                            }
                            (Some(_), Some(task)) => {
                                diesel::update(tasks::table.find(&key))
                                    .set(TaskRow::from_task(task).changes())
                                    .execute(conn)?;
                            }
                        }
                        let mut revision =
                            Revision::record(Some(action), before.as_ref(), after.as_ref(), &edit.by, edit.at);
                        revision.version = version + 1;
                        record(conn, &revision)?;
                        touched.push(step.task_id);
                    }
                    Ok::<_, Refusal>(touched)
                })
            })
            .await?;
        Ok(reverted)
    }

    async fn save_plan(&self, plan: &Plan) -> Result<(), StoreError> {
        let row = (
            plans::id.eq(plan.id.to_string()),
            plans::user_id.eq(plan.owner.to_string()),
            plans::conversation_id.eq(plan.conversation.to_string()),
            plans::origin.eq(plan.origin.as_str()),
            plans::changes.eq(changes_to_json(&plan.changes).to_string()),
            plans::status.eq(plan.status.as_str()),
            plans::created_at.eq(to_micros(plan.created_at)),
            plans::expires_at.eq(to_micros(plan.expires_at)),
        );
        self.store
            .run(move |conn| {
                diesel::insert_into(plans::table).values(row).execute(conn)?;
                Ok::<_, SqliteError>(())
            })
            .await?;
        Ok(())
    }

    async fn decide_plan(
        &self,
        owner: UserId,
        id: uuid::Uuid,
        decision: Decision,
        now: parley_kernel::Timestamp,
    ) -> Result<Plan, PlanError> {
        let decided = self
            .store
            .run(move |conn| {
                conn.immediate_transaction(|conn| {
                    type Stored = (String, String, String, String, String, i64, i64);
                    let row: Option<Stored> = plans::table
                        .find(id.to_string())
                        .select((
                            plans::user_id,
                            plans::conversation_id,
                            plans::origin,
                            plans::changes,
                            plans::status,
                            plans::created_at,
                            plans::expires_at,
                        ))
                        .first(conn)
                        .optional()?;
                    let Some((user, conversation, origin, changes, status, created_at, expires_at)) =
                        row.filter(|row| row.0 == owner.to_string())
                    else {
                        return Err(Refusal::NotFound);
                    };
                    let changes = serde_json::from_str(&changes).map_err(corrupt)?;
                    let mut plan = Plan {
                        id,
                        owner: UserId::from_uuid(crate::rows::parse_uuid(&user)?),
                        conversation: parley_kernel::ConversationId::from_uuid(crate::rows::parse_uuid(&conversation)?),
                        origin: origin.parse().map_err(corrupt)?,
                        changes: changes_from_stored(&changes).map_err(corrupt)?,
                        status: status.parse().map_err(corrupt)?,
                        created_at: crate::rows::from_micros(created_at)?,
                        expires_at: crate::rows::from_micros(expires_at)?,
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
                            apply_plan(conn, &plan, now)?;
                            PlanStatus::Approved
                        }
                    };
                    diesel::update(plans::table.find(id.to_string()))
                        .set((plans::status.eq(plan.status.as_str()), plans::decided_at.eq(Some(to_micros(now)))))
                        .execute(conn)?;
                    Ok::<_, Refusal>(plan)
                })
            })
            .await?;
        Ok(decided)
    }

    async fn reverted(&self, owner: UserId, tool_calls: &[String]) -> Result<Vec<String>, StoreError> {
        let (owner, tool_calls) = (owner.to_string(), tool_calls.to_vec());
        let reverted = self
            .store
            .run(move |conn| {
                let reverted = reverted_tool_calls::table
                    .filter(reverted_tool_calls::user_id.eq(owner))
                    .filter(reverted_tool_calls::tool_call_id.eq_any(tool_calls))
                    .select(reverted_tool_calls::tool_call_id)
                    .load(conn)?;
                Ok::<_, SqliteError>(reverted)
            })
            .await?;
        Ok(reverted)
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
