//! `growth`: what one user's reads cost as their data grows. Rows are seeded
//! by SQL for one user (tasks) and one séance session (messages); requests
//! are sequential, one connection; p50 and p99 per read at each size.

use anyhow::Context;
use serde_json::{Value, json};

use crate::Options;
use crate::scenarios::{Bench, Verdict, describe, get_load, no_errors, verdict};

/// The reads measured, as (label, path after the host; `{session}` is replaced).
const READS: [(&str, &str); 4] = [
    ("GET /api/v1/tasks?limit=20", "/api/v1/tasks?limit=20"),
    ("GET /api/v1/tasks?limit=20&completed=true", "/api/v1/tasks?limit=20&completed=true"),
    ("GET /api/v1/tasks?limit=20&q=task 42", "/api/v1/tasks?limit=20&q=task%2042"),
    ("GET /api/v1/sessions/{id}/messages?limit=50", "/api/v1/sessions/{session}/messages?limit=50"),
];

/// Gives `user` `rows` tasks (every other one completed) and the session
/// `session` `rows` messages, by SQL.
async fn seed(bench: &Bench, user: &str, session: &str, rows: usize) -> anyhow::Result<()> {
    bench
        .database
        .execute(&format!(
            "INSERT INTO tasks (id, user_id, title, description, priority, created_at, updated_at, completed_at) \
             SELECT gen_random_uuid(), '{user}', 'Task ' || g, 'Seeded by parley-bench', \
             (ARRAY['low', 'medium', 'high'])[1 + g % 3], now() - g * interval '1 second', \
             now() - g * interval '1 second', CASE WHEN g % 2 = 0 THEN now() END \
             FROM generate_series(1, {rows}) AS g"
        ))
        .await?;
    bench
        .database
        .execute(&format!(
            "INSERT INTO session_messages (id, session_id, user_id, user_name, message, is_spirit, created_at) \
             SELECT gen_random_uuid(), '{session}', '{user}', 'Grower', 'message ' || g, false, \
             now() - g * interval '1 second' FROM generate_series(1, {rows}) AS g"
        ))
        .await?;
    bench.database.execute("VACUUM ANALYZE tasks").await?;
    bench.database.execute("VACUUM ANALYZE session_messages").await?;
    Ok(())
}

async fn open_session(bench: &Bench, token: &str) -> anyhow::Result<String> {
    let response = bench
        .client
        .post(format!("{}/api/v1/sessions", bench.address))
        .bearer_auth(token)
        .json(&json!({"name": "growth", "max_users": 10}))
        .send()
        .await?;
    let status = response.status();
    let body: Value = response.json().await.context("create session: a JSON body")?;
    if status.as_u16() != 201 {
        anyhow::bail!("create session answered {status}: {body}");
    }
    Ok(body["data"]["id"].as_str().context("create session: id")?.to_owned())
}

pub async fn growth(bench: &Bench, options: &Options) -> anyhow::Result<Vec<Verdict>> {
    let sizes: &[usize] = if options.smoke { &[20, 200] } else { &[1_000, 100_000] };
    // Eight reads, one connection each in turn: half the usual run each.
    let run = Options { duration: options.duration / 2, ..options.clone() };
    println!(
        "\n== growth: one user's reads at {} rows (tasks and séance messages seeded by SQL), sequential requests",
        sizes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" / ")
    );
    // p50 and p99 in ms, per read, per size.
    let mut figures: Vec<Vec<(f64, f64)>> = vec![Vec::new(); READS.len()];
    for &rows in sizes {
        let (user, token) = bench.register("grower").await?;
        let session = open_session(bench, &token).await?;
        seed(bench, &user, &session, rows).await?;
        for (index, (label, path)) in READS.iter().enumerate() {
            let url = format!("{}{}", bench.address, path.replace("{session}", &session));
            let stats = get_load(&run, 1, url, Some(token.clone())).await?;
            println!("  {rows:>7} rows  {label}: {}", describe(&stats));
            no_errors(label, &stats)?;
            figures[index].push((stats.ms(0.50), stats.ms(0.99)));
        }
    }
    println!(
        "\n| read | {} |",
        sizes.iter().map(|rows| format!("{rows} rows p50 / p99")).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|{}", "---|".repeat(sizes.len()));
    for ((label, _), row) in READS.iter().zip(&figures) {
        let cells: Vec<String> = row.iter().map(|(p50, p99)| format!("{p50:.2} / {p99:.2} ms")).collect();
        println!("| `{label}` | {} |", cells.join(" | "));
    }
    let (first, last) = (0, sizes.len() - 1);
    let mut verdicts = Vec::new();
    for (index, (label, _)) in READS.iter().enumerate() {
        if index == 2 {
            continue;
        }
        let (small, large) = (figures[index][first].1, figures[index][last].1);
        verdicts.push(verdict(
            "growth",
            format!("`{label}` p99 at {} rows ≤ 2× at {}", sizes[last], sizes[first]),
            format!("{large:.2} ms / {small:.2} ms = {:.2}×", large / small),
            large <= 2.0 * small,
        ));
    }
    let (page, search) = (figures[0][first].1, figures[2][last].1);
    verdicts.push(verdict(
        "growth",
        format!("`q` p99 at {} rows ≤ 5× the unfiltered page's p99 at {}", sizes[last], sizes[first]),
        format!("{search:.2} ms / {page:.2} ms = {:.2}×", search / page),
        search <= 5.0 * page,
    ));
    Ok(verdicts)
}
