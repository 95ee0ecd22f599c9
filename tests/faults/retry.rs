//! A connection lost under a call: a read is run again on another
//! connection, a write is not (whether it committed is unknown).

use std::time::Duration;

use parley_tests::TestDatabase;
use reqwest::{Method, StatusCode};

use crate::proxy::{Proxy, through, upstream_of};
use crate::server::{Client, Reply};

/// Holds `call` at the proxy, then cuts its connection and lets new ones through.
async fn lose_the_connection_under(proxy: &Proxy, call: impl Future<Output = Reply>) -> Reply {
    proxy.stop_forwarding();
    let cut = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        proxy.cut_connections();
        proxy.resume_forwarding();
    };
    tokio::join!(call, cut).0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_lost_its_connection_is_retried_and_a_write_is_answered_503() {
    let database = TestDatabase::create().await;
    let proxy = Proxy::start(upstream_of(&database.url)).await;
    let server: Client = crate::server::spawn_in_process(&through(&database.url, proxy.port), 4).await;
    let token = server.register().await;
    let created = server.create_task(&token, "kept").await.expect("an answer");
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);

    let read = lose_the_connection_under(&proxy, async {
        server.send(Method::GET, "/api/v1/tasks", Some(token.as_str()), None).await.expect("an answer")
    })
    .await;
    let write = lose_the_connection_under(&proxy, async {
        server.create_task(&token, "lost with its connection").await.expect("an answer")
    })
    .await;

    assert_eq!(read.status, StatusCode::OK, "the read is retried on a new connection: {:?}", read.body);
    assert_eq!(read.body["data"][0]["title"], "kept");
    assert!(write.is_database_unavailable(), "a write is not retried: {write:?}");
    let titles = server.task_titles(&token).await;
    assert_eq!(titles, ["kept"], "the write never reached the database");
}
