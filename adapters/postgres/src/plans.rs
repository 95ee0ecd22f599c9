//! What the page statements cost, read from PostgreSQL's own plans: every
//! list's page 500 reads about as many rows and buffers as its page 1 (a
//! keyset predicate on an index, no OFFSET), and `q` goes through the trigram
//! index. The statements are the repositories' own (`page_query`,
//! `list_page`, …), wrapped in `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` with
//! their parameters bound as the repositories bind them. Nothing is timed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::{QueryResult, sql_types::Json};
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use parley_kernel::{ConversationId, Cursor, RoomId, UserId};
use parley_tasks::TaskFilter;
use serde_json::Value;

use crate::{PgStore, conversation_rows, conversations, room_rows, rooms, task_rows, tasks};

/// `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)` of a diesel statement, its
/// parameters bound as they would be.
struct Explain<Q>(Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ");
        self.0.walk_ast(out.reborrow())
    }
}

impl<Q> QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q> Query for Explain<Q> {
    type SqlType = Json;
}

/// What one execution of a plan read.
#[derive(Debug, Clone, Copy)]
struct Cost {
    /// Rows produced by every node plus rows its filters threw away.
    rows: u64,
    /// Shared buffers hit or read.
    buffers: u64,
    /// Rows the statement returned.
    returned: u64,
}

fn number(node: &Value, key: &str) -> u64 {
    node.get(key).and_then(Value::as_f64).map_or(0, |n| n.round() as u64)
}

fn rows_read(node: &Value) -> u64 {
    let own = number(node, "Actual Rows") * number(node, "Actual Loops").max(1)
        + number(node, "Rows Removed by Filter")
        + number(node, "Rows Removed by Index Recheck");
    own + node.get("Plans").and_then(Value::as_array).map_or(0, |plans| plans.iter().map(rows_read).sum())
}

fn node_types(node: &Value, into: &mut Vec<String>) {
    let name = node.get("Node Type").and_then(Value::as_str).unwrap_or_default();
    let index = node.get("Index Name").and_then(Value::as_str).map(|index| format!(" on {index}")).unwrap_or_default();
    into.push(format!("{name}{index}"));
    for plan in node.get("Plans").and_then(Value::as_array).into_iter().flatten() {
        node_types(plan, into);
    }
}

/// The plan of `query`, run once.
async fn explain<Q: QueryFragment<Pg> + Send>(conn: &mut AsyncPgConnection, query: Q) -> Value {
    let plans: Value = Explain(query).get_result(conn).await.expect("EXPLAIN");
    plans[0]["Plan"].clone()
}

fn cost(plan: &Value) -> Cost {
    Cost {
        rows: rows_read(plan),
        buffers: number(plan, "Shared Hit Blocks") + number(plan, "Shared Read Blocks"),
        returned: number(plan, "Actual Rows"),
    }
}

fn nodes(plan: &Value) -> Vec<String> {
    let mut names = Vec::new();
    node_types(plan, &mut names);
    names
}

/// A migrated database of its own on the server of `TEST_DATABASE_URL`,
/// dropped at the end.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn create() -> Self {
        let admin = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let name = format!("parley_plans_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin).await.expect("PostgreSQL at TEST_DATABASE_URL");
        diesel::sql_query(format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("CREATE DATABASE");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        let store = PgStore::connect(&url, 1).expect("pool");
        store.migrate().await.expect("migrate");
        Self { admin, name, url }
    }

    async fn connect(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.expect("connect")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let mut conn = AsyncPgConnection::establish(&admin).await.ok()?;
                diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await.ok()
            })
        })
        .join();
    }
}

const PAGE: i64 = 20;
/// Rows before page 500 of a list of `PAGE` rows a page.
const DEPTH: i64 = 499 * PAGE;

async fn sql(conn: &mut AsyncPgConnection, statement: &str) {
    diesel::sql_query(statement).execute(conn).await.unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// One user with 60,300 tasks titled `task <n> alpha|beta|gamma` in turn
/// (every other one completed),
/// 10,100 conversations of one message, one of them with 10,100 more; a second user
/// with 20,100 tasks; 10,100 open séance sessions, one of 10,100 messages.
async fn seed(conn: &mut AsyncPgConnection) -> (UserId, ConversationId, RoomId) {
    let (owner, other) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (conversation, session) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for (user, email, count) in [(owner, "owner@example.com", 60_300), (other, "other@example.com", 20_100)] {
        sql(conn, &format!("INSERT INTO users VALUES ('{user}', '{email}', 'U', 'x', now())")).await;
        sql(
            conn,
            &format!(
                "INSERT INTO tasks (id, user_id, title, priority, created_at, updated_at, completed_at) \
                 SELECT gen_random_uuid(), '{user}', 'task ' || n || (ARRAY[' alpha', ' beta', ' gamma'])[n % 3 + 1], \
                 'medium', \
                 timestamptz '2026-01-01' + n * interval '1 second', timestamptz '2026-01-01', \
                 CASE WHEN n % 2 = 0 THEN timestamptz '2026-06-01' END \
                 FROM generate_series(1, {count}) AS n"
            ),
        )
        .await;
    }
    sql(
        conn,
        &format!(
            "INSERT INTO conversations SELECT CASE WHEN n = 1 THEN '{conversation}'::uuid ELSE gen_random_uuid() END, \
             '{owner}', 'c' || n, timestamptz '2026-01-01', timestamptz '2026-01-01' + n * interval '1 second' \
             FROM generate_series(1, 10100) AS n"
        ),
    )
    .await;
    sql(
        conn,
        &format!(
            "INSERT INTO messages (id, conversation_id, role, content, created_at, context_chars) \
             SELECT gen_random_uuid(), '{conversation}', 'user', 'm' || n, \
             timestamptz '2026-01-01' + n * interval '1 second', length('m' || n) FROM generate_series(1, 10100) AS n"
        ),
    )
    .await;
    sql(
        conn,
        "INSERT INTO messages (id, conversation_id, role, content, created_at, context_chars) \
         SELECT gen_random_uuid(), id, 'user', 'hello', updated_at, 5 FROM conversations",
    )
    .await;
    sql(
        conn,
        &format!(
            "INSERT INTO sessions SELECT CASE WHEN n = 1 THEN '{session}'::uuid ELSE gen_random_uuid() END, \
             's' || n, 10, '{owner}', timestamptz '2026-01-01' + n * interval '1 second', NULL \
             FROM generate_series(1, 10100) AS n"
        ),
    )
    .await;
    sql(
        conn,
        &format!(
            "INSERT INTO session_messages SELECT gen_random_uuid(), '{session}', '{owner}', 'U', 'm' || n, false, \
             timestamptz '2026-01-01' + n * interval '1 second' FROM generate_series(1, 10100) AS n"
        ),
    )
    .await;
    sql(conn, "ANALYZE").await;
    (UserId::from_uuid(owner), ConversationId::from_uuid(conversation), RoomId::from_uuid(session))
}

/// The cost of page 1 and of page 500 of one list: `page(cursor, limit)` is
/// the repository's statement, `key` a row's cursor.
async fn first_and_deep<Q, R>(
    conn: &mut AsyncPgConnection,
    page: impl Fn(Option<Cursor>, i64) -> Q,
    key: impl Fn(&R) -> Cursor,
) -> (Cost, Cost, Vec<String>)
where
    Q: LoadQuery<'static, AsyncPgConnection, R> + QueryFragment<Pg> + Send + 'static,
    R: Send + 'static,
{
    let before: Vec<R> = page(None, DEPTH).load(conn).await.expect("the rows before page 500");
    assert_eq!(i64::try_from(before.len()).unwrap(), DEPTH, "the list has 500 pages");
    let cursor = key(before.last().unwrap());
    let first = explain(conn, page(None, PAGE + 1)).await;
    let deep = explain(conn, page(Some(cursor), PAGE + 1)).await;
    (cost(&first), cost(&deep), nodes(&deep))
}

fn assert_as_cheap(list: &str, first: Cost, deep: Cost, plan: &[String]) {
    eprintln!("{list}: page 1 {first:?}, page 500 {deep:?}, plan {plan:?}");
    assert_eq!(first.returned, 21, "{list}: page 1 is full");
    assert_eq!(deep.returned, 21, "{list}: page 500 is full");
    assert!(!plan.iter().any(|node| node == "Seq Scan"), "{list}: no sequential scan at page 500: {plan:?}");
    assert!(deep.rows <= 2 * first.rows + 50, "{list}: page 500 read {} rows, page 1 {}", deep.rows, first.rows);
    assert!(
        deep.buffers <= 2 * first.buffers + 20,
        "{list}: page 500 read {} buffers, page 1 {}",
        deep.buffers,
        first.buffers
    );
}

#[tokio::test]
async fn page_500_reads_what_page_1_reads_on_every_list() {
    let database = Database::create().await;
    let mut conn = database.connect().await;
    let (owner, conversation, session) = seed(&mut conn).await;

    let task_key = |row: &task_rows::TaskRow| Cursor { at: row.created_at, id: row.id };
    for (name, completed, q) in [
        ("tasks", None, None),
        ("tasks completed=true", Some(true), None),
        ("tasks completed=false", Some(false), None),
        ("tasks q=GAMMA", None, Some("GAMMA")),
        ("tasks q=mm", None, Some("mm")),
        ("tasks completed=true q=mm", Some(true), Some("mm")),
    ] {
        let filter = TaskFilter { completed, title_contains: q.map(str::to_owned) };
        let page = |cursor, limit| tasks::page_query(owner, &filter, cursor, limit);
        let (first, deep, plan) = first_and_deep(&mut conn, page, task_key).await;
        assert_as_cheap(name, first, deep, &plan);
    }

    let page = |cursor, limit| conversations::list_page(owner, cursor, limit);
    let key = |(row, _): &(conversation_rows::ConversationRow, i64)| Cursor { at: row.updated_at, id: row.id };
    let (first, deep, plan) = first_and_deep(&mut conn, page, key).await;
    assert_as_cheap("conversations", first, deep, &plan);

    let page = |cursor, limit| conversations::messages_page(conversation, cursor, limit);
    let key = |row: &conversation_rows::MessageRow| Cursor { at: row.created_at, id: row.id };
    let (first, deep, plan) = first_and_deep(&mut conn, page, key).await;
    assert_as_cheap("conversation messages", first, deep, &plan);

    let key = |row: &room_rows::RoomRow| Cursor { at: row.created_at, id: row.id };
    let (first, deep, plan) = first_and_deep(&mut conn, rooms::active_page, key).await;
    assert_as_cheap("sessions", first, deep, &plan);

    let page = |cursor, limit| rooms::messages_page(session, cursor, limit);
    let key = |row: &room_rows::RoomMessageRow| Cursor { at: row.created_at, id: row.id };
    let (first, deep, plan) = first_and_deep(&mut conn, page, key).await;
    assert_as_cheap("session messages", first, deep, &plan);
}

#[tokio::test]
async fn q_goes_through_the_trigram_index_and_a_short_q_through_the_owners_index() {
    let database = Database::create().await;
    let mut conn = database.connect().await;
    let (owner, _, _) = seed(&mut conn).await;
    let plan_of = async |conn: &mut AsyncPgConnection, q: &str| {
        let filter = TaskFilter { completed: None, title_contains: Some(q.to_owned()) };
        nodes(&explain(conn, tasks::page_query(owner, &filter, None, PAGE + 1)).await)
    };

    // Whether the owner's index read newest first, stopping at 21 rows, would
    // be cheaper for this user is an estimate from sampled statistics; a plain
    // index scan is turned off so that the choice is between the two indexes
    // read whole, which is what a search of a large history comes to.
    sql(&mut conn, "SET enable_indexscan = off").await;
    sql(&mut conn, "SET enable_seqscan = off").await;
    for long in ["4242 ALPHA", "Zebra", "4242 ALPHA%_"] {
        let plan = plan_of(&mut conn, long).await;
        assert!(
            plan.iter().any(|node| node.ends_with("on tasks_user_title_trgm_idx")),
            "{long:?} uses the index: {plan:?}"
        );
        // One index holds the owner and the trigrams: no other user's candidate is read.
        assert!(!plan.iter().any(|node| node == "BitmapAnd"), "{long:?}: the owner narrows the index scan: {plan:?}");
    }

    // A short q holds no trigram: the index could only give all the owner's
    // rows (its user_id part), so the owner's newest rows are walked in
    // order instead and the walk stops at the page's last match.
    sql(&mut conn, "SET enable_indexscan = on").await;
    for short in ["42", "k", "%_"] {
        let plan = plan_of(&mut conn, short).await;
        assert!(
            plan.iter().any(|node| node.ends_with("on tasks_user_created_idx")),
            "{short:?} scans the owner's tasks by index: {plan:?}"
        );
        assert!(!plan.iter().any(|node| node == "Sort"), "{short:?} read in order, not sorted: {plan:?}");
    }
}

/// The capped count's probe (is there a row past `TOTAL_CAP`?) of every
/// list walks the list's own index and stops one row past the cap, though
/// the owner here holds every row of the table: left to itself the planner
/// read such a table sequentially, and a synchronized scan that started where
/// the previous one stopped wrapped round to the other users' rows every
/// hundred requests or so.
#[tokio::test]
async fn the_capped_count_walks_the_lists_index_and_stops_past_the_cap() {
    let database = Database::create().await;
    let mut conn = database.connect().await;
    let (owner, conversation, session) = seed(&mut conn).await;
    // As autovacuum leaves a table once its rows settle: the visibility map
    // set, so an index-only scan need not visit the heap.
    sql(&mut conn, "VACUUM ANALYZE").await;
    let cap = parley_kernel::TOTAL_CAP;
    let probes = [
        (
            "conversations",
            explain(&mut conn, past_cap!(conversations::owned_by(owner), conversations::recent_first())).await,
        ),
        (
            "conversation messages",
            explain(&mut conn, past_cap!(conversations::messages_of(conversation), conversations::oldest_first()))
                .await,
        ),
        ("sessions", explain(&mut conn, past_cap!(rooms::open_rooms(), rooms::newest_first())).await),
        ("session messages", explain(&mut conn, past_cap!(rooms::messages_of(session), rooms::oldest_first())).await),
    ];
    for (list, plan) in probes {
        let (read, nodes) = (cost(&plan), nodes(&plan));
        eprintln!("{list}: {read:?} {nodes:?}");
        assert_eq!(read.returned, 1, "{list}: more than the cap match");
        assert!(
            nodes.iter().all(|node| node != "Seq Scan" && node != "Sort"),
            "{list}: read in index order: {nodes:?}"
        );
        assert!(read.rows <= 2 * (cap + 1) + 50, "{list}: read {} rows for a cap of {cap}", read.rows);
    }
    assert_task_counts_walk_narrow_indexes(&mut conn, owner).await;
}

/// A task list's capped count, for every `completed` filter, walks one of
/// the narrow count indexes (the owner's `user_id` entries only), not the
/// table, though the owner holds most of it, and stops one entry past the
/// cap; a search's count reads the trigram index and none of those. Run on
/// the vacuumed table of [`the_capped_count_walks_the_lists_index_and_stops_past_the_cap`]:
/// before a vacuum an index-only scan would visit the table for every entry,
/// and for an owner of most of the table the planner reads the table itself,
/// which is as cheap then.
async fn assert_task_counts_walk_narrow_indexes(conn: &mut AsyncPgConnection, owner: UserId) {
    let cap = parley_kernel::TOTAL_CAP;
    for (completed, index) in [
        (None, "tasks_user_count_idx"),
        (Some(true), "tasks_user_completed_count_idx"),
        (Some(false), "tasks_user_open_count_idx"),
    ] {
        let filter = TaskFilter { completed, ..TaskFilter::default() };
        let plan = explain(conn, tasks::capped_count_query(owner, &filter)).await;
        let (read, nodes) = (cost(&plan), nodes(&plan));
        eprintln!("{completed:?}: {read:?} {nodes:?}");
        assert!(nodes.iter().any(|node| node.ends_with(&format!("on {index}"))), "{completed:?}: {nodes:?}");
        assert!(
            nodes.iter().all(|node| node != "Seq Scan" && node != "Gather" && node != "Sort"),
            "{completed:?}: read by index in one process: {nodes:?}"
        );
        assert!(read.rows <= 2 * (cap + 1) + 50, "{completed:?}: read {} rows for a cap of {cap}", read.rows);

        // A search's count goes through the trigram index, and cannot be
        // offered a narrow index to walk all the owner's titles through.
        let search = TaskFilter { completed, title_contains: Some("task 4".to_owned()) };
        let searched = self::nodes(&explain(conn, tasks::capped_count_query(owner, &search)).await);
        eprintln!("q, {completed:?}: {searched:?}");
        assert!(
            searched.iter().any(|node| node.ends_with("on tasks_user_title_trgm_idx")),
            "q {completed:?}: {searched:?}"
        );
        assert!(!searched.iter().any(|node| node.ends_with("_count_idx")), "q {completed:?}: {searched:?}");
    }
}
