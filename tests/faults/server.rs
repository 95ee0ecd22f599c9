//! The servers under test: in-process on a given database, or the real
//! `parley` binary as a child process; and the few requests the checks send.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

/// The key the servers sign tokens with, so a token outlives a restart.
const TOKEN_SECRET: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";

fn settings(database_url: &str, max_connections: usize) -> HashMap<String, String> {
    HashMap::from([
        ("DATABASE_URL".into(), database_url.to_owned()),
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("ENVIRONMENT".into(), "test".into()),
        ("TOKEN_SECRET".into(), TOKEN_SECRET.into()),
        ("DATABASE_MAX_CONNECTIONS".into(), max_connections.to_string()),
        ("LOG_LEVEL".into(), "error".into()),
    ])
}

/// A client of one server.
#[derive(Clone)]
pub struct Client {
    pub address: String,
    http: reqwest::Client,
}

/// Status and body of one answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    pub fn is_database_unavailable(&self) -> bool {
        self.status == StatusCode::SERVICE_UNAVAILABLE && self.code() == Some("DATABASE_UNAVAILABLE")
    }
}

/// Starts the server in this process on `database_url` and returns its client.
pub async fn spawn_in_process(database_url: &str, max_connections: usize) -> Client {
    let vars = settings(database_url, max_connections);
    let settings = parley_server::Settings::from_lookup(|name| vars.get(name).cloned()).expect("valid settings");
    let app = parley_server::build(settings).await.expect("the server starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    Client::new(address)
}

impl Client {
    fn new(address: String) -> Self {
        // Every request on a fresh connection: a killed server must not leave
        // a pooled connection behind that the next request would trip over.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client");
        Self { address, http }
    }

    /// Sends one request; `Err` when no answer came (the server is gone).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<Reply, reqwest::Error> {
        let mut request = self.http.request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        Ok(Reply { status, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) })
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(reqwest::Method::GET, path, token, None).await.expect("the server answers")
    }

    /// `POST /api/v1/tasks` with `title`.
    pub async fn create_task(&self, token: &str, title: &str) -> Result<Reply, reqwest::Error> {
        self.send(reqwest::Method::POST, "/api/v1/tasks", Some(token), Some(json!({ "title": title }))).await
    }

    /// Registers a fresh user and returns their token.
    pub async fn register(&self) -> String {
        let email = format!("faults-{}@example.com", uuid::Uuid::new_v4().simple());
        let reply = self
            .send(
                reqwest::Method::POST,
                "/api/v1/auth/register",
                None,
                Some(json!({"email": email, "password": "correct horse", "name": "Faults"})),
            )
            .await
            .expect("the server answers");
        assert_eq!(reply.status, StatusCode::CREATED, "register: {:?}", reply.body);
        reply.body["data"]["access_token"].as_str().expect("a token").to_owned()
    }

    /// Every task title of the token's user, all pages.
    pub async fn task_titles(&self, token: &str) -> Vec<String> {
        let mut titles = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/v1/tasks?limit=100&cursor={cursor}"),
                None => "/api/v1/tasks?limit=100".to_owned(),
            };
            let reply = self.get(&path, Some(token)).await;
            assert_eq!(reply.status, StatusCode::OK, "list: {:?}", reply.body);
            let page = reply.body["data"].as_array().expect("a page");
            titles.extend(page.iter().filter_map(|task| task["title"].as_str().map(str::to_owned)));
            match reply.body["meta"]["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return titles,
            }
        }
    }

    /// Polls `GET path` until it answers 200, for at most `limit`; returns
    /// how long that took, or the last answer.
    pub async fn until_ok(&self, path: &str, token: Option<&str>, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        let mut last = String::from("no answer");
        while started.elapsed() < limit {
            match self.send(reqwest::Method::GET, path, token, None).await {
                Ok(reply) if reply.status == StatusCode::OK => return Ok(started.elapsed()),
                Ok(reply) => last = format!("{} {}", reply.status, reply.body),
                Err(error) => last = error.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last)
    }
}

/// The `parley` binary of this build: `PARLEY_BIN`, else the one cargo
/// builds next to this test binary (built first, so it is current).
fn parley_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PARLEY_BIN") {
        return PathBuf::from(path);
    }
    // <target>/<profile>/deps/faults-<hash>
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(std::path::Path::parent).expect("a cargo target layout");
    let profile = profile_dir.file_name().and_then(|name| name.to_str()).unwrap_or("debug");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build.args(["build", "--quiet", "-p", "parley-server", "--bin", "parley"]);
    match profile {
        "debug" => {}
        "release" => {
            build.arg("--release");
        }
        other => {
            build.args(["--profile", other]);
        }
    }
    if let Some(target_dir) = profile_dir.parent() {
        build.env("CARGO_TARGET_DIR", target_dir);
    }
    let status = build.status().expect("cargo runs");
    assert!(status.success(), "building the parley binary failed");
    profile_dir.join(format!("parley{}", std::env::consts::EXE_SUFFIX))
}

/// The real `parley` binary serving `database_url`; killed on drop.
pub struct ServerProcess {
    child: Child,
    pub client: Client,
}

impl ServerProcess {
    /// Starts `parley serve` and waits for the line with its port.
    pub fn start(database_url: &str) -> Self {
        let binary = parley_binary();
        let mut child = Command::new(&binary)
            .arg("serve")
            .env_clear()
            .envs(settings(database_url, 8))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the server's first line");
        // Keep reading (its logs) so that the server never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let address = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        assert!(address.starts_with("http://"), "unexpected first line {line:?}");
        Self { child, client: Client::new(address) }
    }

    /// SIGKILL: no shutdown, no draining, no flushing.
    pub fn kill(mut self) {
        self.child.kill().expect("kill -9 the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
