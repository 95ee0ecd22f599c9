//! A database that stops answering while its connections stay open.

use std::time::{Duration, Instant};

use parley_tests::TestDatabase;
use reqwest::{Method, StatusCode};

use crate::proxy::{Proxy, through, upstream_of};
use crate::server::spawn_in_process;

/// The contract: `DATABASE_UNAVAILABLE` within 2 s; the rest is room for the
/// test's own HTTP round trip on a busy machine.
const ANSWER_BOUND: Duration = Duration::from_millis(2500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_database_is_503_within_two_seconds_for_reads_and_writes_and_recovers() {
    let database = TestDatabase::create().await;
    let proxy = Proxy::start(upstream_of(&database.url)).await;
    // Two connections for six calls: four of them wait for the pool first.
    let server = spawn_in_process(&through(&database.url, proxy.port), 2).await;
    let token = server.register().await;
    let before = server.create_task(&token, "before the hang").await.expect("an answer");
    assert_eq!(before.status, StatusCode::CREATED, "{:?}", before.body);

    proxy.stop_forwarding();
    let calls = (0..6).map(|i| {
        let (server, token) = (&server, &token);
        async move {
            let started = Instant::now();
            let reply = if i % 2 == 0 {
                server.send(Method::GET, "/api/v1/tasks", Some(token.as_str()), None).await
            } else {
                server.create_task(token, &format!("during the hang {i}")).await
            };
            (i, reply.expect("an answer"), started.elapsed())
        }
    });
    let no_database_needed = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.get("/openapi.json", None).await
    };
    let (outcomes, spec) = tokio::join!(futures_util::future::join_all(calls), no_database_needed);

    assert_eq!(spec.status, StatusCode::OK, "a route without the database is served during the hang");
    let slowest = outcomes.iter().map(|(_, _, elapsed)| *elapsed).max();
    eprintln!("slowest of {} answers during the hang: {slowest:?}", outcomes.len());
    for (i, reply, elapsed) in &outcomes {
        let kind = if i % 2 == 0 { "read" } else { "write" };
        assert!(reply.is_database_unavailable(), "{kind} {i} during the hang: {reply:?}");
        assert!(*elapsed < ANSWER_BOUND, "{kind} {i} was answered after {elapsed:?}, not within 2 s");
    }

    proxy.resume_forwarding();
    let recovered = server.until_ok("/api/v1/tasks", Some(token.as_str()), Duration::from_secs(5)).await;
    assert!(recovered.is_ok(), "reads did not recover within 5 s: {recovered:?}");
    let after = server.create_task(&token, "after the hang").await.expect("an answer");
    assert_eq!(after.status, StatusCode::CREATED, "writes recover too: {:?}", after.body);
}
