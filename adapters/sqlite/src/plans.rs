//! How SQLite means to run the page statements: every list's page 500 is a
//! range of an index that starts at the cursor (a row value, no OFFSET, no
//! sort), as page 1 is a range that starts at the newest row; `q` of three
//! characters goes through the trigram index. The statements are the
//! repositories' own (`page_query`, `list_page`, …) under `EXPLAIN QUERY
//! PLAN`; SQLite reports no row counts, so the plan's shape is what is
//! checked. Nothing is timed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::{Integer, Text};
use diesel::sqlite::Sqlite;
use parley_kernel::Cursor;
use parley_tasks::TaskFilter;

use crate::rows::{from_micros, parse_uuid};
use crate::{SqliteStore, conversation_rows, conversations, room_rows, rooms, task_rows, tasks};

struct ExplainQueryPlan<Q>(Q);

impl<Q: QueryFragment<Sqlite>> QueryFragment<Sqlite> for ExplainQueryPlan<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_sql("EXPLAIN QUERY PLAN ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for ExplainQueryPlan<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for ExplainQueryPlan<Q> {
    type SqlType = (Integer, Integer, Integer, Text);
}

impl<Q> RunQueryDsl<SqliteConnection> for ExplainQueryPlan<Q> {}

/// The plan's lines, as `EXPLAIN QUERY PLAN` words them.
fn plan<Q: QueryFragment<Sqlite>>(conn: &mut SqliteConnection, query: Q) -> Vec<String> {
    let rows: Vec<(i32, i32, i32, String)> = ExplainQueryPlan(query).load(conn).expect("EXPLAIN QUERY PLAN");
    rows.into_iter().map(|(_, _, _, detail)| detail).collect()
}

/// A migrated store on a file of its own, removed at the end.
struct File {
    dir: std::path::PathBuf,
}

impl File {
    async fn create() -> (Self, SqliteConnection) {
        let dir = std::env::temp_dir().join(format!("parley-plans-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("parley.db");
        let store = SqliteStore::connect(path.to_str().unwrap(), 1).expect("open");
        store.migrate().await.expect("migrate");
        let conn = SqliteConnection::establish(path.to_str().unwrap()).expect("connect");
        (Self { dir }, conn)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const OWNER: &str = "00000000-0000-4000-8000-000000000001";
const CONVERSATION: &str = "00000000-0000-4000-8000-000000000001";
const SESSION: &str = "00000000-0000-4000-8000-000000000001";

/// Rows `1..=count` of a recursive series, to seed with one statement.
fn series(count: u32) -> String {
    format!("WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {count})")
}

fn id(column: &str) -> String {
    format!("printf('00000000-0000-4000-8000-%012d', {column})")
}

/// The same shape of data as the PostgreSQL plan test: one user with 60,300
/// tasks (`task <n> alpha|beta|gamma`, every other one completed), 10,100
/// conversations of one message, one with 10,100 more, 10,100 open sessions,
/// one with 10,100 messages.
fn seed(conn: &mut SqliteConnection) {
    use diesel::connection::SimpleConnection as _;
    let (task, series_tasks, series_rows) = (id("n"), series(60_300), series(10_100));
    let message = id("n + 100000");
    conn.batch_execute(&format!(
        "INSERT INTO users VALUES ('{OWNER}', 'owner@example.com', 'U', 'x', 0);
         INSERT INTO tasks (id, user_id, title, title_folded, priority, created_at, updated_at, completed_at)
             {series_tasks} SELECT {task}, '{OWNER}', 'task ' || n, 'task ' || n || ' ' ||
             CASE n % 3 WHEN 0 THEN 'alpha' WHEN 1 THEN 'beta' ELSE 'gamma' END,
             'medium', n * 1000000, 0, CASE WHEN n % 2 = 0 THEN 1 END FROM s;
         INSERT INTO conversations {series_rows} SELECT {task}, '{OWNER}', 'c', 0, n * 1000000 FROM s;
         INSERT INTO messages (id, conversation_id, role, content, created_at, context_chars)
             SELECT 'm' || id, id, 'user', 'hello', updated_at, 5 FROM conversations;
         INSERT INTO messages (id, conversation_id, role, content, created_at, context_chars)
             {series_rows} SELECT {message}, '{CONVERSATION}', 'user', 'm', n * 1000000, 1 FROM s;
         INSERT INTO sessions {series_rows} SELECT {task}, 's', 10, '{OWNER}', n * 1000000, NULL FROM s;
         INSERT INTO session_messages {series_rows}
             SELECT {task}, '{SESSION}', '{OWNER}', 'U', 'm', 0, n * 1000000 FROM s;
         ANALYZE;"
    ))
    .expect("seed");
}

/// Page 1's and page 500's plans of one list; `page(cursor, limit)` is the
/// repository's statement, `key` a row's cursor.
fn first_and_deep<Q, R>(
    conn: &mut SqliteConnection,
    page: impl Fn(Option<Cursor>, i64) -> Q,
    key: impl Fn(&R) -> Cursor,
) -> (Vec<String>, Vec<String>)
where
    Q: LoadQuery<'static, SqliteConnection, R> + QueryFragment<Sqlite>,
{
    let before: Vec<R> = page(None, 499 * 20).load(conn).expect("the rows before page 500");
    assert_eq!(before.len(), 499 * 20, "the list has 500 pages");
    let cursor = key(before.last().unwrap());
    (plan(conn, page(None, 21)), plan(conn, page(Some(cursor), 21)))
}

/// Page 500 starts at the cursor inside `index`, and neither page sorts or
/// scans a whole table (walking an index in order from its start, as page 1
/// does, stops at the page's last row).
fn assert_ranged(list: &str, index: &str, (first, deep): &(Vec<String>, Vec<String>)) {
    eprintln!("{list}: page 1 {first:?}, page 500 {deep:?}");
    for plan in [first, deep] {
        assert!(plan.iter().all(|line| !line.contains("TEMP B-TREE")), "{list}: no sort: {plan:?}");
        assert!(
            plan.iter()
                .all(|line| !line.starts_with("SCAN") || line.contains(" USING ") || line.contains("VIRTUAL TABLE")),
            "{list}: no scan of a whole table: {plan:?}"
        );
        assert!(plan.iter().any(|line| line.contains(index)), "{list}: read through {index}: {plan:?}");
    }
    assert!(
        deep.iter().any(|line| line.contains(index) && (line.contains(")<(?,?)") || line.contains(")>(?,?)"))),
        "{list}: page 500 starts at the cursor in {index}: {deep:?}"
    );
}

fn cursor_of(at: i64, id: &str) -> Cursor {
    Cursor { at: from_micros(at).unwrap(), id: parse_uuid(id).unwrap() }
}

#[tokio::test]
async fn page_500_starts_at_its_cursor_in_an_index_on_every_list() {
    let (_file, mut conn) = File::create().await;
    seed(&mut conn);

    let task_key = |row: &task_rows::TaskRow| cursor_of(row.created_at, &row.id);
    for (name, completed, q, index) in [
        ("tasks", None, None, "tasks_user_newest"),
        ("tasks completed=true", Some(true), None, "tasks_user_completed"),
        ("tasks completed=false", Some(false), None, "tasks_user_open"),
        ("tasks q=mm", None, Some("mm"), "tasks_user_newest"),
        ("tasks completed=true q=mm", Some(true), Some("mm"), "tasks_user_completed"),
    ] {
        let filter = TaskFilter { completed, title_contains: q.map(str::to_owned) };
        let search = tasks::search(&mut conn, &filter).expect("search");
        let page = |cursor, limit| tasks::page_query(OWNER, &filter, &search, cursor, limit);
        assert_ranged(name, index, &first_and_deep(&mut conn, page, task_key));
    }

    let page = |cursor, limit| conversations::list_page(OWNER, cursor, limit);
    let key = |(row, _): &(conversation_rows::ConversationRow, i64)| cursor_of(row.updated_at, &row.id);
    let conversations = first_and_deep(&mut conn, page, key);
    assert_ranged("conversations", "conversations_user_recent", &conversations);
    // Each row's message count reads the narrow index, not the messages' rows.
    for plan in [&conversations.0, &conversations.1] {
        assert!(
            plan.iter().any(|line| line.contains("COVERING INDEX messages_conversation (conversation_id=?)")),
            "conversations: message counts: {plan:?}"
        );
    }

    let page = |cursor, limit| conversations::messages_page(CONVERSATION, cursor, limit);
    let key = |row: &conversation_rows::MessageRow| cursor_of(row.created_at, &row.id);
    // The messages table is keyed by (conversation_id, created_at, id): its own key is the index.
    assert_ranged("conversation messages", "PRIMARY KEY", &first_and_deep(&mut conn, page, key));
    // A conversation's newest messages (its read and a turn's history): the same key, backwards, no sort.
    let newest = plan(&mut conn, conversations::newest_messages(CONVERSATION, 201));
    assert!(newest.iter().all(|line| !line.contains("TEMP B-TREE")), "newest messages: no sort: {newest:?}");
    assert!(
        newest.iter().any(|line| line.contains("USING PRIMARY KEY (conversation_id=?)")),
        "newest messages: {newest:?}"
    );

    let key = |row: &room_rows::RoomRow| cursor_of(row.created_at, &row.id);
    assert_ranged("sessions", "sessions_active_newest", &first_and_deep(&mut conn, rooms::active_page, key));

    let page = |cursor, limit| rooms::messages_page(SESSION, cursor, limit);
    let key = |row: &room_rows::RoomMessageRow| cursor_of(row.created_at, &row.id);
    assert_ranged("session messages", "session_messages_oldest", &first_and_deep(&mut conn, page, key));
}

#[tokio::test]
async fn q_of_three_characters_goes_through_the_trigram_index() {
    let (_file, mut conn) = File::create().await;
    seed(&mut conn);
    // 1 and 101 tasks match the first two; GAMMA's 20,100 candidates are more
    // than the cap, so the owner's newest rows are read instead.
    for (q, indexed) in [("4242 ALPHA", true), ("k 424", true), ("GAMMA", false), ("mm", false), ("%", false)] {
        for completed in [None, Some(true)] {
            let filter = TaskFilter { completed, title_contains: Some(q.to_owned()) };
            let search = tasks::search(&mut conn, &filter).expect("search");
            assert_eq!(matches!(search, tasks::Search::Indexed { .. }), indexed, "{q:?}");
            let lines = plan(&mut conn, tasks::page_query(OWNER, &filter, &search, None, 21));
            let by_candidate = lines.iter().any(|line| line.contains("json_each"));
            assert_eq!(by_candidate, indexed, "{q:?}: {lines:?}");
            if indexed {
                // The candidates drive the read, not a walk of the owner's rows.
                assert!(lines.iter().all(|line| !line.contains("tasks_user_")), "{q:?} {completed:?}: {lines:?}");
            }
        }
    }
}
