//! `kill -9` of the real `parley` binary under concurrent writes: every
//! write it acknowledged is there after a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use parley_tests::{TestDatabase, TestSqliteFile};
use reqwest::StatusCode;

use crate::server::{Client, ServerProcess};

const WRITERS: usize = 6;
/// Acknowledged writes to see before the kill.
const BEFORE_KILL: usize = 30;

/// Creates tasks until the server stops answering; the acknowledged titles.
async fn write_until_gone(client: Arc<Client>, token: Arc<str>, writer: usize, acknowledged: Arc<Mutex<Vec<String>>>) {
    for n in 0.. {
        let title = format!("crash {writer}-{n}");
        match client.create_task(&token, &title).await {
            Ok(reply) if reply.status == StatusCode::CREATED => acknowledged.lock().expect("lock").push(title),
            Ok(reply) => panic!("a write before the kill failed: {reply:?}"),
            Err(_) => return, // killed: not acknowledged
        }
    }
}

async fn acknowledged_writes_survive_kill_9(database_url: String) {
    let url = database_url.clone();
    let server = tokio::task::spawn_blocking(move || ServerProcess::start(&url)).await.expect("started");
    let client = Arc::new(server.client.clone());
    let token: Arc<str> = client.register().await.into();
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write_until_gone(client.clone(), token.clone(), w, acknowledged.clone())))
        .collect();
    while acknowledged.lock().expect("lock").len() < BEFORE_KILL {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    server.kill();
    for writer in writers {
        writer.await.expect("a writer");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    let restarted = tokio::task::spawn_blocking(move || ServerProcess::start(&database_url)).await.expect("started");
    let stored = restarted.client.task_titles(&token).await;

    let missing: Vec<&String> = acknowledged.iter().filter(|title| !stored.contains(title)).collect();
    assert!(acknowledged.len() >= BEFORE_KILL);
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes are gone: {missing:?}",
        missing.len(),
        acknowledged.len()
    );
    eprintln!("{} acknowledged writes, all present after kill -9 ({} stored)", acknowledged.len(), stored.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_on_postgres() {
    let database = TestDatabase::create().await;
    acknowledged_writes_survive_kill_9(database.url.clone()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_on_sqlite() {
    let file = TestSqliteFile::create();
    acknowledged_writes_survive_kill_9(file.url.clone()).await;
}
