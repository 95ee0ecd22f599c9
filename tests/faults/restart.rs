//! A database that restarts (`pg_ctl -m fast stop`, then start) under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parley_tests::TestDatabase;
use reqwest::{Method, StatusCode};

use crate::cluster::Cluster;
use crate::server::{Client, Reply, spawn_in_process};

/// Reads and writes in a loop until `stop`; every answer, in order.
async fn load(server: Arc<Client>, token: Arc<str>, worker: usize, stop: Arc<AtomicBool>) -> Vec<Reply> {
    let mut replies = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let reply = if n % 2 == 0 {
            server.send(Method::GET, "/api/v1/tasks?limit=5", Some(&*token), None).await
        } else {
            server.create_task(&token, &format!("load {worker}-{n}")).await
        };
        replies.push(reply.expect("the server stays up and answers"));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    replies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarting_database_is_503_never_500_and_is_used_again_within_5_s_of_its_return() {
    let Some(cluster) = Cluster::start() else { return };
    let database = TestDatabase::create_on(&cluster.admin_url(), "parley_faults").await.expect("a database");
    let server = Arc::new(spawn_in_process(&database.url, 4).await);
    let token: Arc<str> = server.register().await.into();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4).map(|w| tokio::spawn(load(server.clone(), token.clone(), w, stop.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let cluster = Arc::new(cluster);
    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop()).await.expect("pg_ctl ran").expect("the cluster stops");
    let read = server.send(Method::GET, "/api/v1/tasks", Some(&*token), None).await.expect("an answer");
    let write = server.create_task(&token, "during the outage").await.expect("an answer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.start_again()).await.expect("pg_ctl ran").expect("it starts");
    let back = Instant::now();
    let recovered = server.until_ok("/api/v1/tasks", Some(&*token), Duration::from_secs(5)).await;
    let after = server.create_task(&token, "after the restart").await.expect("an answer");
    let recovered_in = back.elapsed();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let mut replies = Vec::new();
    for worker in workers {
        replies.extend(worker.await.expect("a load worker"));
    }

    assert!(read.is_database_unavailable(), "a read during the outage: {read:?}");
    assert!(write.is_database_unavailable(), "a write during the outage: {write:?}");
    assert!(recovered.is_ok(), "reads did not recover within 5 s: {recovered:?}");
    assert_eq!(after.status, StatusCode::CREATED, "a write after the restart: {:?}", after.body);
    let unexpected: Vec<&Reply> = replies
        .iter()
        .filter(|r| !(r.status == StatusCode::OK || r.status == StatusCode::CREATED || r.is_database_unavailable()))
        .collect();
    assert!(unexpected.is_empty(), "answers other than success or 503 DATABASE_UNAVAILABLE: {unexpected:?}");
    let unavailable = replies.iter().filter(|r| r.is_database_unavailable()).count();
    eprintln!(
        "{} answers under load, {unavailable} of them 503; recovered {recovered_in:?} after the restart",
        replies.len()
    );
    drop(database);
    drop(cluster);
}
