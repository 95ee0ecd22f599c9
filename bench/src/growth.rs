//! `growth`: what one user's reads cost as their data grows, on both stores.
//!
//! For each size, a fresh user gets that many tasks (every other one
//! completed), conversations and open séance sessions, and one room gets that
//! many messages, all seeded by SQL; every list's first page is then read by
//! one connection, sequential requests (p50 and p99, and the body's size). A
//! chat turn is timed on top of a 20- and a 2,000-message history, turns
//! alternating between the two so both see the same machine. PostgreSQL runs
//! 1,000 / 100,000 / 1,000,000 rows, SQLite (a file of its own, an in-process
//! server of its own) 1,000 / 100,000.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use diesel::connection::SimpleConnection as _;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection as _};
use serde_json::json;

use crate::Options;
use crate::load::{self, Stats};
use crate::scenarios::{self, Bench, Verdict, describe, get_load, no_errors, verdict};

/// The lists measured, as (label, path after the host; `{room}` is replaced).
const READS: [(&str, &str); 7] = [
    ("GET /api/v1/tasks?limit=20", "/api/v1/tasks?limit=20"),
    ("GET /api/v1/tasks?limit=20&completed=true", "/api/v1/tasks?limit=20&completed=true"),
    ("GET /api/v1/tasks?limit=20&q=task 42", "/api/v1/tasks?limit=20&q=task%2042"),
    ("GET /api/v1/chat/conversations?limit=20", "/api/v1/chat/conversations?limit=20"),
    ("GET /api/v1/chatkit/sessions?limit=20", "/api/v1/chatkit/sessions?limit=20"),
    ("GET /api/v1/sessions?limit=20", "/api/v1/sessions?limit=20"),
    ("GET /api/v1/sessions/{id}/messages?limit=50", "/api/v1/sessions/{room}/messages?limit=50"),
];
/// The index in `READS` of the search, whose target differs.
const SEARCH: usize = 2;

/// Where rows are seeded: the SQL differs by store, the reads do not.
enum Store {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Store {
    fn name(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "PostgreSQL",
            Self::Sqlite(_) => "SQLite",
        }
    }

    /// Runs `sql` (several statements) on the store.
    async fn run(&self, sql: String) -> anyhow::Result<()> {
        match self {
            Self::Postgres(url) => {
                let mut conn = AsyncPgConnection::establish(url).await.context("connecting to the bench database")?;
                conn.batch_execute(&sql).await.context("seeding PostgreSQL")
            }
            Self::Sqlite(path) => {
                let path = path.display().to_string();
                tokio::task::spawn_blocking(move || {
                    let mut conn = <diesel::SqliteConnection as diesel::Connection>::establish(&path)
                        .context("opening the SQLite file")?;
                    conn.batch_execute("PRAGMA busy_timeout = 60000")?;
                    conn.batch_execute(&sql).context("seeding SQLite")
                })
                .await
                .context("the seeding thread")?
            }
        }
    }

    /// `rows` integers `g` from 1 as a row source, and the SQL for a unique
    /// id and a time `g` seconds before now, in this store's dialect.
    fn series(&self, rows: usize) -> (String, String, String) {
        match self {
            Self::Postgres(_) => (
                format!("generate_series(1, {rows}) AS s(g)"),
                "gen_random_uuid()".to_owned(),
                "now() - g * interval '1 second'".to_owned(),
            ),
            Self::Sqlite(_) => {
                let now = self.now();
                let prefix = &uuid::Uuid::new_v4().simple().to_string()[..8];
                (
                    format!(
                        "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < {rows}) SELECT g FROM s)"
                    ),
                    format!("printf('{prefix}-0000-4000-8000-%012d', g)"),
                    format!("({now} - g * 1000000)"),
                )
            }
        }
    }

    /// Now, in this store's dialect.
    fn now(&self) -> String {
        match self {
            Self::Postgres(_) => "now()".to_owned(),
            Self::Sqlite(_) => SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros()).to_string(),
        }
    }

    /// Gives `user` `rows` tasks, conversations and open sessions, and the
    /// room `room` `rows` messages; then, on PostgreSQL, refreshes the
    /// planner's statistics (as autovacuum would).
    async fn seed(&self, user: &str, room: &str, rows: usize) -> anyhow::Result<()> {
        let (from, id, at) = self.series(rows);
        let (folded, completed, spirit) = match self {
            Self::Postgres(_) => ("", "CASE WHEN g % 2 = 0 THEN now() END", "false"),
            Self::Sqlite(_) => ("'task ' || g, ", "CASE WHEN g % 2 = 0 THEN 1 END", "0"),
        };
        let folded_column = if folded.is_empty() { "" } else { "title_folded, " };
        let analyze = match self {
            Self::Postgres(_) => {
                "VACUUM ANALYZE tasks; VACUUM ANALYZE conversations; VACUUM ANALYZE sessions; \
                                  VACUUM ANALYZE session_messages;"
            }
            // No statistics on SQLite, as in production: the server never runs
            // ANALYZE. Run here, on the seeding connection, it left the
            // server's pooled connections with the statistics of the first
            // size (SQLite reloads them on other connections only when the
            // schema changes, which only the first ANALYZE does); with
            // those, a 1,000-row owner's capped counts scanned the whole
            // table (the 28-30 ms lists of the tenth session's runs).
            Self::Sqlite(_) => "",
        };
        self.run(format!(
            "INSERT INTO tasks (id, user_id, title, {folded_column}description, priority, created_at, updated_at, completed_at) \
             SELECT {id}, '{user}', 'Task ' || g, {folded}'Seeded by parley-bench', \
             (CASE g % 3 WHEN 0 THEN 'low' WHEN 1 THEN 'medium' ELSE 'high' END), {at}, {at}, {completed} FROM {from};
             INSERT INTO conversations (id, user_id, title, created_at, updated_at) \
             SELECT {id}, '{user}', 'Conversation ' || g, {at}, {at} FROM {from};
             INSERT INTO sessions (id, name, max_users, host_id, created_at, closed_at) \
             SELECT {id}, 'Room ' || g, 10, '{user}', {at}, NULL FROM {from};
             INSERT INTO session_messages (id, session_id, user_id, user_name, message, is_spirit, created_at) \
             SELECT {id}, '{room}', '{user}', 'Grower', 'message ' || g, {spirit}, {at} FROM {from};"
        ))
        .await?;
        // One at a time: VACUUM cannot run inside the batch's transaction.
        for statement in analyze.split_inclusive(';') {
            self.run(statement.to_owned()).await?;
        }
        Ok(())
    }

    /// One conversation of `user` per id, each with `messages` messages,
    /// user and assistant in turn (about 60 characters each). The messages
    /// are written as a server writes them, the conversations' turns
    /// interleaved in time (message `g` goes to conversation `g % n`), so a
    /// history is spread over the table as it is in production, not one
    /// run of adjacent rows.
    async fn seed_histories(&self, user: &str, ids: &[uuid::Uuid], messages: usize) -> anyhow::Result<()> {
        let (from, id, at) = self.series(ids.len() * messages);
        let uuid = match self {
            Self::Postgres(_) => "::uuid",
            Self::Sqlite(_) => "",
        };
        let mut sql = String::new();
        let mut keys = Vec::with_capacity(ids.len());
        for (k, conversation) in ids.iter().enumerate() {
            sql.push_str(&format!(
                "INSERT INTO conversations (id, user_id, title, created_at, updated_at) \
                 VALUES ('{conversation}', '{user}', 'History', {now}, {now});\n",
                now = self.now(),
            ));
            keys.push(format!("({k}, '{conversation}'{uuid})"));
        }
        let text = format!(
            "'Message ' || (g / {n}) || ': please add a task to buy milk, eggs and bread on Friday'",
            n = ids.len()
        );
        sql.push_str(&format!(
            "WITH c(k, id) AS (VALUES {keys}) \
             INSERT INTO messages (id, conversation_id, role, content, created_at, context_chars) \
             SELECT {id}, c.id, CASE (g / {n}) % 2 WHEN 0 THEN 'user' ELSE 'assistant' END, {text}, {at}, length({text}) \
             FROM {from} JOIN c ON c.k = g % {n} ORDER BY g;",
            keys = keys.join(", "),
            n = ids.len(),
        ));
        self.run(sql).await
    }
}

/// A Parley to read from, and the store under it.
struct Target {
    store: Store,
    address: String,
    client: reqwest::Client,
    /// Keeps the SQLite file's folder until the run ends.
    _dir: Option<TempDir>,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Target {
    async fn open_room(&self, token: &str) -> anyhow::Result<String> {
        crate::ws::create_session_at(&self.client, &self.address, token, "growth", 10).await
    }

    /// The first page of `path` as one client sequentially reads it, and its body's size.
    async fn read(&self, run: &Options, path: &str, token: &str) -> anyhow::Result<(Stats, usize)> {
        let url = format!("{}{path}", self.address);
        let body = self.client.get(&url).bearer_auth(token).send().await?.bytes().await?;
        let stats = get_load(run, 1, url, Some(token.to_owned())).await?;
        Ok((stats, body.len()))
    }

    /// `turns` chat turns on each of two sets of conversations, in turn.
    async fn chat_turns(&self, token: &str, short: &[uuid::Uuid], long: &[uuid::Uuid]) -> anyhow::Result<[Stats; 2]> {
        let mut stats = [empty()?, empty()?];
        for (a, b) in short.iter().zip(long) {
            for (which, conversation) in [(0, a), (1, b)] {
                let sent = Instant::now();
                let request = self
                    .client
                    .post(format!("{}/api/v1/chat", self.address))
                    .bearer_auth(token)
                    .json(&json!({"message": "show my tasks", "conversation_id": conversation}));
                let outcome = load::expect(request, 200).await;
                let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                let into = &mut stats[which];
                into.latency.saturating_record(micros.max(1));
                into.requests += 1;
                into.elapsed += sent.elapsed();
                if let Err(error) = outcome {
                    into.errors += 1;
                    into.first_error.get_or_insert_with(|| format!("{error:#}"));
                }
            }
        }
        Ok(stats)
    }
}

fn empty() -> anyhow::Result<Stats> {
    Ok(Stats { requests: 0, errors: 0, first_error: None, elapsed: Duration::ZERO, latency: load::histogram()? })
}

/// What one store's run measured: per read, per size, (p50, p99, body bytes).
struct Figures {
    store: &'static str,
    sizes: Vec<usize>,
    reads: Vec<Vec<(f64, f64, usize)>>,
    /// This process's (server and load client) RSS after all the reads, MiB.
    rss: Vec<f64>,
    /// Chat turn p50 / p99 on the short history, then on the long one.
    chat: [(f64, f64); 2],
    histories: [usize; 2],
}

async fn measure(
    target: &Target,
    sizes: &[usize],
    histories: [usize; 2],
    options: &Options,
) -> anyhow::Result<Figures> {
    // Every size is seeded first; then each read is measured in rounds that
    // take the sizes in turn (each going first in turn), so that all sizes
    // see the same machine: autovacuum after a seeding, a neighbour's build.
    const ROUNDS: u32 = 4;
    let first = Options { duration: options.duration / (2 * ROUNDS), ..options.clone() };
    let later = Options { warmup: options.warmup / 8, ..first.clone() };
    let mut seeded = Vec::new();
    let mut rss = Vec::new();
    for &rows in sizes {
        let (user, token) = scenarios::register(&target.client, &target.address, "grower").await?;
        let room = target.open_room(&token).await?;
        let seeding = Instant::now();
        target.store.seed(&user, &room, rows).await?;
        let after = crate::ws::rss_kib(std::process::id())? as f64 / 1024.0;
        println!(
            "  {} {rows} rows seeded in {:.1} s; process RSS {after:.1} MiB",
            target.store.name(),
            seeding.elapsed().as_secs_f64()
        );
        seeded.push((token, room));
    }
    let mut reads: Vec<Vec<(f64, f64, usize)>> = vec![Vec::new(); READS.len()];
    for (index, (label, path)) in READS.iter().enumerate() {
        let mut merged: Vec<Option<(Stats, usize)>> = (0..sizes.len()).map(|_| None).collect();
        for round in 0..ROUNDS {
            for turn in 0..sizes.len() {
                let at = (turn + round as usize) % sizes.len();
                let (token, room) = &seeded[at];
                let run = if round == 0 { &first } else { &later };
                let (stats, bytes) = target.read(run, &path.replace("{room}", room), token).await?;
                no_errors(label, &stats)?;
                merged[at] = Some(match merged[at].take() {
                    Some((before, _)) => (before.merge(stats)?, bytes),
                    None => (stats, bytes),
                });
            }
        }
        for (&rows, figures) in sizes.iter().zip(merged) {
            let (stats, bytes) = figures.context("a size was not measured")?;
            println!("  {rows:>7} rows  {label}: {}, {bytes} B", describe(&stats));
            reads[index].push((stats.ms(0.50), stats.ms(0.99), bytes));
        }
    }
    rss.push(crate::ws::rss_kib(std::process::id())? as f64 / 1024.0);
    // Each turn on a conversation no turn touched before: 300 of them per set
    // (600,000 seeded messages in the long one), enough for a steady p50.
    let turns = if options.smoke { 3 } else { 300 };
    let (user, token) = scenarios::register(&target.client, &target.address, "historian").await?;
    let short: Vec<uuid::Uuid> = (0..turns).map(|_| uuid::Uuid::new_v4()).collect();
    let long: Vec<uuid::Uuid> = (0..turns).map(|_| uuid::Uuid::new_v4()).collect();
    target.store.seed_histories(&user, &short, histories[0]).await?;
    target.store.seed_histories(&user, &long, histories[1]).await?;
    // A warm-up on conversations of their own, so the first measured turns do not pay for it.
    let warm: Vec<uuid::Uuid> = (0..turns.min(10)).map(|_| uuid::Uuid::new_v4()).collect();
    target.store.seed_histories(&user, &warm, histories[0]).await?;
    target.chat_turns(&token, &warm, &warm).await?;
    let [short_stats, long_stats] = target.chat_turns(&token, &short, &long).await?;
    for (messages, stats) in histories.iter().zip([&short_stats, &long_stats]) {
        println!("  chat turn on {messages} messages: {}", describe(stats));
        no_errors("chat turn", stats)?;
    }
    Ok(Figures {
        store: target.store.name(),
        sizes: sizes.to_vec(),
        reads,
        rss,
        chat: [(short_stats.ms(0.5), short_stats.ms(0.99)), (long_stats.ms(0.5), long_stats.ms(0.99))],
        histories,
    })
}

fn report(figures: &Figures) -> Vec<Verdict> {
    let Figures { store, sizes, reads, rss, chat, histories } = figures;
    println!(
        "\n{store}\n\n| read | {} |",
        sizes.iter().map(|rows| format!("{rows} rows p50 / p99 (body)")).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|{}", "---|".repeat(sizes.len()));
    for ((label, _), row) in READS.iter().zip(reads) {
        let cells: Vec<String> =
            row.iter().map(|(p50, p99, bytes)| format!("{p50:.2} / {p99:.2} ms ({bytes} B)")).collect();
        println!("| `{label}` | {} |", cells.join(" | "));
    }
    for (messages, (p50, p99)) in histories.iter().zip(chat) {
        println!("| `POST /api/v1/chat` on {messages} messages | {p50:.2} / {p99:.2} ms |");
    }
    println!(
        "\nprocess RSS (server and load client) after all the reads: {}",
        rss.iter().map(|mib| format!("{mib:.1} MiB")).collect::<Vec<_>>().join(", ")
    );
    let (first, last) = (0, sizes.len() - 1);
    let scenario = if *store == "SQLite" { "growth (SQLite)" } else { "growth" };
    let mut verdicts = Vec::new();
    for (index, (label, _)) in READS.iter().enumerate() {
        if index == SEARCH {
            continue;
        }
        let (small, large) = (reads[index][first].1, reads[index][last].1);
        verdicts.push(verdict(
            scenario,
            format!("`{label}` p99 at {} rows ≤ 2× at {}", sizes[last], sizes[first]),
            format!("{large:.2} ms / {small:.2} ms = {:.2}×", large / small),
            large <= 2.0 * small,
        ));
    }
    let (page, search) = (reads[0][first].1, reads[SEARCH][last].1);
    verdicts.push(verdict(
        scenario,
        format!("`q` p99 at {} rows ≤ 5× the unfiltered page's p99 at {}", sizes[last], sizes[first]),
        format!("{search:.2} ms / {page:.2} ms = {:.2}×", search / page),
        search <= 5.0 * page,
    ));
    let (short, long) = (chat[0].0, chat[1].0);
    verdicts.push(verdict(
        scenario,
        format!("chat turn p50 on {} messages ≤ 1.2× on {}", histories[1], histories[0]),
        format!("{long:.2} ms / {short:.2} ms = {:.2}×", long / short),
        long <= 1.2 * short,
    ));
    // What a full page returns does not grow with the rows behind it (the
    // search's page fills as matches grow; longer numbers in the seeded
    // titles add a few bytes).
    let grown: Vec<&str> = READS
        .iter()
        .zip(reads)
        .enumerate()
        .filter(|(index, (_, row))| *index != SEARCH && row[last].2 as f64 > 1.1 * row[first].2 as f64)
        .map(|(_, ((label, _), _))| *label)
        .collect();
    verdicts.push(verdict(
        scenario,
        format!("no full first page's body grows > 10 % from {} to {} rows", sizes[first], sizes[last]),
        if grown.is_empty() { "none grew".to_owned() } else { format!("grew: {}", grown.join(", ")) },
        grown.is_empty(),
    ));
    verdicts
}

pub async fn growth(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    let (postgres, sqlite, histories): (&[usize], &[usize], _) = if options.smoke {
        (&[50, 200], &[50, 200], [20, 200])
    } else {
        (&[1_000, 100_000, 1_000_000], &[1_000, 100_000], [20, 2_000])
    };
    println!(
        "\n== growth: one user's first pages at {} rows on PostgreSQL and {} on SQLite (seeded by SQL), \
         sequential requests; a chat turn on {} and {} messages",
        postgres.iter().map(ToString::to_string).collect::<Vec<_>>().join(" / "),
        sqlite.iter().map(ToString::to_string).collect::<Vec<_>>().join(" / "),
        histories[0],
        histories[1],
    );
    let wanted = |store: &str| options.store.as_deref().is_none_or(|only| only == store);
    let mut figures = Vec::new();
    if wanted("postgres") {
        let on_postgres = Target {
            store: Store::Postgres(bench.database.url.clone()),
            address: bench.address.clone(),
            client: bench.client.clone(),
            _dir: None,
        };
        figures.push(measure(&on_postgres, postgres, histories, options).await?);
    }
    if wanted("sqlite") {
        let dir = std::env::temp_dir().join(format!("parley-growth-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).context("a folder for the SQLite file")?;
        let file = dir.join("growth.db");
        let address = scenarios::serve_in_process(&format!("sqlite://{}", file.display()), &[]).await?;
        let on_sqlite =
            Target { store: Store::Sqlite(file), address, client: scenarios::client(4)?, _dir: Some(TempDir(dir)) };
        figures.push(measure(&on_sqlite, sqlite, histories, options).await?);
    }
    Ok(figures.iter().flat_map(report).collect())
}
