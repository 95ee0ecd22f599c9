//! Instances of the server sharing one database and one Redis prefix, the
//! clients that talk to them, and a private `redis-server` a test may stop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use parley_tests::{TestDatabase, TestRedis};

const WAIT: Duration = Duration::from_secs(10);
const TOKEN_SECRET: &str = "2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a";

fn settings(database: &TestDatabase, redis: &TestRedis, overrides: &[(&str, &str)]) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".into(), database.url.clone()),
        ("HOST".into(), "127.0.0.1".into()),
        ("PORT".into(), "0".into()),
        ("ENVIRONMENT".into(), "test".into()),
        ("TOKEN_SECRET".into(), TOKEN_SECRET.into()),
        ("DATABASE_MAX_CONNECTIONS".into(), "4".into()),
        ("LOG_LEVEL".into(), "error".into()),
        ("LOGIN_ATTEMPTS_PER_ADDRESS".into(), "1000000".into()),
        ("REGISTRATIONS_PER_ADDRESS".into(), "1000000".into()),
    ]);
    for (key, value) in redis.settings() {
        vars.insert(key.to_owned(), value);
    }
    for (key, value) in overrides {
        vars.insert((*key).to_owned(), (*value).to_owned());
    }
    vars
}

/// One server instance, by its address.
#[derive(Clone)]
pub struct Instance {
    pub address: String,
    http: reqwest::Client,
}

#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub token: String,
}

pub struct Users;

impl Users {
    /// Registers `n` fresh users through `instance`.
    pub async fn register(instance: &Instance, n: usize) -> Vec<User> {
        let mut users = Vec::with_capacity(n);
        for i in 0..n {
            let email = format!("cluster-{}@example.com", uuid::Uuid::new_v4().simple());
            let body = json!({"email": email, "password": "correct horse", "name": format!("Sitter {i}")});
            let reply = instance.post("/api/v1/auth/register", "", body).await;
            assert_eq!(reply.status(), StatusCode::CREATED);
            let body: Value = reply.json().await.unwrap();
            users.push(User {
                id: body["data"]["user"]["id"].as_str().unwrap().to_owned(),
                token: body["data"]["access_token"].as_str().unwrap().to_owned(),
            });
        }
        users
    }
}

impl Instance {
    /// A server in this process on `database` and `redis`, on a port of its own.
    pub async fn start(database: &TestDatabase, redis: &TestRedis, overrides: &[(&str, &str)]) -> Self {
        let vars = settings(database, redis, overrides);
        let settings = parley_server::Settings::from_lookup(|name| vars.get(name).cloned()).expect("valid settings");
        let app = parley_server::build(settings).await.expect("the server starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until(std::future::pending()));
        Self::at(address)
    }

    fn at(address: String) -> Self {
        let http = reqwest::Client::builder().timeout(WAIT).build().unwrap();
        Self { address, http }
    }

    pub async fn get(&self, path: &str, token: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.address)).bearer_auth(token).send().await.unwrap();
        response.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.address)).json(&body);
        if !token.is_empty() {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// A request that spends the chat budget (ChatKit's session list).
    pub async fn budgeted(&self, token: &str) -> reqwest::Response {
        self.http.get(format!("{}/api/v1/chatkit/sessions", self.address)).bearer_auth(token).send().await.unwrap()
    }

    /// `/health/ready`: its status and `checks.redis`.
    pub async fn ready(&self) -> (StatusCode, Value) {
        let response = self.http.get(format!("{}/health/ready", self.address)).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body["checks"]["redis"].clone())
    }

    /// A session hosted by `host` with `max_users` seats; its id.
    pub async fn create_room(&self, host: &User, max_users: u32) -> String {
        let reply = self.post("/api/v1/sessions", &host.token, json!({"name": "Séance", "max_users": max_users})).await;
        assert_eq!(reply.status(), StatusCode::CREATED);
        let body: Value = reply.json().await.unwrap();
        body["data"]["id"].as_str().unwrap().to_owned()
    }
}

/// What a socket saw next.
#[derive(Debug)]
pub enum Seen {
    Event(String, Value),
    Closed(Option<u16>),
}

/// A WebSocket client in a room.
pub struct Socket {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    async fn connect(instance: &Instance, room: &str, user: &User) -> Self {
        let url = format!("ws://{}/api/v1/sessions/{room}/ws", instance.address.trim_start_matches("http://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("authorization", format!("Bearer {}", user.token).parse().unwrap());
        let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("the upgrade answers in time")
            .expect("the upgrade is accepted");
        Self { socket }
    }

    /// Joins, or the refusal's error code and close code.
    pub async fn try_join(instance: &Instance, room: &str, user: &User) -> Result<Self, (String, Option<u16>)> {
        let mut socket = Self::connect(instance, room, user).await;
        socket.send("join", json!({})).await;
        match socket.next().await {
            Seen::Event(event, _) if event == "joined" => Ok(socket),
            Seen::Event(event, data) if event == "error" => {
                let code = data["code"].as_str().unwrap_or_default().to_owned();
                Err((code, socket.closed().await))
            }
            other => panic!("unexpected answer to a join: {other:?}"),
        }
    }

    /// Joins; the `joined` data.
    pub async fn join(instance: &Instance, room: &str, user: &User) -> (Self, Value) {
        let mut socket = Self::connect(instance, room, user).await;
        socket.send("join", json!({})).await;
        match socket.next().await {
            Seen::Event(event, data) if event == "joined" => (socket, data),
            other => panic!("not joined: {other:?}"),
        }
    }

    pub async fn send(&mut self, event: &str, data: Value) {
        let text = json!({"event": event, "data": data}).to_string();
        self.socket.send(Message::text(text)).await.expect("send");
    }

    pub async fn next(&mut self) -> Seen {
        loop {
            let frame = tokio::time::timeout(WAIT, self.socket.next()).await.expect("a frame in time");
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(text.as_str()).expect("JSON frame");
                    return Seen::Event(frame["event"].as_str().expect("event").to_owned(), frame["data"].clone());
                }
                Some(Ok(Message::Close(frame))) => return Seen::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Seen::Closed(None),
            }
        }
    }

    /// The next event other than the spirit's, which must be `event`; its data.
    pub async fn expect(&mut self, event: &str) -> Value {
        loop {
            match self.next().await {
                Seen::Event(seen, _) if seen.starts_with("spirit_") => {}
                Seen::Event(seen, data) if seen == event => return data,
                other => panic!("expected {event}, saw {other:?}"),
            }
        }
    }

    /// Skips events until `event`; its data.
    pub async fn until(&mut self, event: &str) -> Value {
        loop {
            match self.next().await {
                Seen::Event(seen, data) if seen == event => return data,
                Seen::Closed(code) => panic!("closed ({code:?}) before {event}"),
                Seen::Event(..) => {}
            }
        }
    }

    /// Skips events until the connection closes; the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Seen::Closed(code) = self.next().await {
                return code;
            }
        }
    }
}

/// The `parley` binary of this build, built next to this test binary.
fn parley_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PARLEY_BIN") {
        return PathBuf::from(path);
    }
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
    assert!(build.status().expect("cargo runs").success(), "building the parley binary failed");
    profile_dir.join(format!("parley{}", std::env::consts::EXE_SUFFIX))
}

/// The real `parley` binary as a child process; killed on drop.
pub struct ServerProcess {
    child: Child,
    pub instance: Instance,
}

impl ServerProcess {
    pub fn start(database: &TestDatabase, redis: &TestRedis, overrides: &[(&str, &str)]) -> Self {
        let binary = parley_binary();
        let mut child = Command::new(&binary)
            .arg("serve")
            .env_clear()
            .envs(settings(database, redis, overrides))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the server's first line");
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let address = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
        assert!(address.starts_with("http://"), "unexpected first line {line:?}");
        Self { child, instance: Instance::at(address) }
    }

    /// SIGKILL: no shutdown, no leaving, no last renewal.
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

/// A `redis-server` of the test's own on a free port, without persistence.
pub struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// `None` (after saying why) when `redis-server` is not installed.
    pub fn start() -> Option<Self> {
        if Command::new("redis-server").arg("--version").output().is_err() {
            eprintln!("skipped: no redis-server on PATH");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { port, child: None };
        server.start_again();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server on its port and waits until it answers.
    pub fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the private redis-server did not listen");
    }

    /// Kills the server (SIGKILL: its clients see their connections drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
