//! The `parley` binary as an operator runs it: its command line, its logs at
//! the most verbose level, and its shutdown on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const PARLEY: &str = env!("CARGO_BIN_EXE_parley");

/// A fresh folder under the system's temporary directory, removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("parley-bin-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `parley` with `args` in `folder`, with a clean environment.
fn parley(folder: &Folder, args: &[&str]) -> Command {
    let mut command = Command::new(PARLEY);
    command.args(args).current_dir(&folder.0).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn help_and_version_explain_and_touch_nothing() {
    let folder = Folder::new();
    let help = parley(&folder, &["--help"]).output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for command in ["serve", "migrate", "openapi", "config", "token-secret"] {
        assert!(text.contains(command), "{command} missing from --help: {text}");
    }
    let version = parley(&folder, &["--version"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("parley {}", env!("CARGO_PKG_VERSION")));
    let migrate_help = parley(&folder, &["migrate", "--help"]).output().unwrap();
    assert!(migrate_help.status.success());
    assert!(!folder.0.join("data").exists(), "`migrate --help` must not create or migrate a database");
    let unknown = parley(&folder, &["frobnicate"]).output().unwrap();
    assert_eq!(unknown.status.code(), Some(2));
}

#[test]
fn migrate_lists_what_it_applied_then_says_none_are_pending() {
    let folder = Folder::new();
    let first = parley(&folder, &["migrate"]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(String::from_utf8_lossy(&first.stdout).lines().filter(|l| l.starts_with("applied ")).count() >= 1);
    let second = parley(&folder, &["migrate"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&second.stdout).trim(), "no migrations pending");
}

#[test]
fn config_check_lists_every_problem_and_config_redacts_secrets() {
    let folder = Folder::new();
    let bad = parley(&folder, &["config", "--check"])
        .env("PORT", "eighty")
        .env("LOG_LEVEL", "verbose")
        .env("CORS_ORIGINS", " , ")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let problems = String::from_utf8_lossy(&bad.stderr);
    for variable in ["PORT", "LOG_LEVEL", "CORS_ORIGINS"] {
        assert!(problems.contains(variable), "{variable} not reported: {problems}");
    }
    let good = parley(&folder, &["config"])
        .env("DATABASE_URL", "postgres://app:s3cret-pw@db.internal:5432/parley")
        .env("TOKEN_SECRET", "ab".repeat(32))
        .output()
        .unwrap();
    assert!(good.status.success());
    let printed = String::from_utf8_lossy(&good.stdout);
    assert!(printed.contains("DATABASE_URL=postgres://app:***@db.internal:5432/parley"), "{printed}");
    assert!(!printed.contains("s3cret-pw") && !printed.contains(&"ab".repeat(32)), "{printed}");
}

#[test]
fn token_secret_prints_a_fresh_key_and_a_closed_pipe_is_not_an_error() {
    let folder = Folder::new();
    let keys: Vec<String> = (0..2)
        .map(|_| String::from_utf8(parley(&folder, &["token-secret"]).output().unwrap().stdout).unwrap())
        .collect();
    for key in &keys {
        assert_eq!(key.trim().len(), 64);
        assert!(key.trim().bytes().all(|b| b.is_ascii_hexdigit()));
    }
    assert_ne!(keys[0], keys[1]);
    let mut child = parley(&folder, &["openapi", "--yaml"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut first = [0_u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap(); // then the pipe closes
    assert!(child.wait().unwrap().success(), "writing to a closed pipe ends quietly");
}

/// A running server and everything it printed.
struct Server {
    child: Child,
    url: String,
    output: Arc<Mutex<String>>,
    _folder: Folder,
}

impl Server {
    fn start(level: &str) -> Self {
        let folder = Folder::new();
        let mut child = parley(&folder, &["serve"])
            .env("PORT", "0")
            .env("DATABASE_URL", "sqlite://data/parley.db")
            .env("TOKEN_SECRET", "cd".repeat(32))
            .env("LOG_LEVEL", level)
            .env("SHUTDOWN_GRACE_SECONDS", "5")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let (url_sender, url) = std::sync::mpsc::channel();
        for stream in
            [Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>, Box::new(child.stderr.take().unwrap())]
        {
            let (output, url_sender) = (Arc::clone(&output), url_sender.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(url) = line.strip_prefix("parley listening on ") {
                        let _ = url_sender.send(url.to_owned());
                    }
                    let mut all = output.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let url = url.recv_timeout(Duration::from_secs(30)).expect("the server says where it listens");
        Self { child, url, output, _folder: folder }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    fn terminate(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    }

    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(client: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn at_trace_the_logs_hold_no_token_password_hash_or_message_body() {
    let server = Server::start("trace");
    let client = reqwest::Client::new();
    let (password, title, chat, room_text) =
        ("pw-Zebra-Quartz-91", "title-Marmalade-77", "chat-Lantern-55", "room-Obsidian-33");
    let email = "secret-keeper@example.com";
    let registered = post(
        &client,
        format!("{}/api/v1/auth/register", server.url),
        None,
        json!({"email": email, "password": password, "name": "Keeper"}),
    )
    .await;
    let token = registered["data"]["access_token"].as_str().unwrap().to_owned();
    let login =
        post(&client, format!("{}/api/v1/auth/login", server.url), None, json!({"email": email, "password": password}))
            .await;
    assert_eq!(login["success"], json!(true), "{login}");
    post(&client, format!("{}/api/v1/tasks", server.url), Some(&token), json!({"title": title})).await;
    post(&client, format!("{}/api/v1/chat", server.url), Some(&token), json!({"message": format!("add task {chat}")}))
        .await;
    let session = post(&client, format!("{}/api/v1/sessions", server.url), Some(&token), json!({"name": "Room"})).await;
    let session_id = session["data"]["id"].as_str().unwrap();
    let ws_url = format!("ws://{}/api/v1/sessions/{session_id}/ws", server.url.trim_start_matches("http://"));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let join = json!({"event": "join", "data": {"token": token}}).to_string();
    socket.send(Message::text(join)).await.unwrap();
    let say = json!({"event": "send_message", "data": {"message": room_text}}).to_string();
    socket.send(Message::text(say)).await.unwrap();
    let mut received = false;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
        if frame.to_text().is_ok_and(|text| text.contains("message_received")) {
            received = true;
            break;
        }
    }
    assert!(received, "the room echoed the message");
    drop(socket);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let logs = server.output();
    assert!(logs.lines().count() > 10, "trace logging is on: {logs}");
    for secret in [password, token.as_str(), title, chat, room_text, "$argon2"] {
        assert!(!logs.contains(secret), "the logs hold {secret:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_accepting_and_exits_zero() {
    let mut server = Server::start("info");
    let client = reqwest::Client::new();
    let ready = client.get(format!("{}/health/ready", server.url)).send().await.unwrap();
    assert_eq!(ready.status(), reqwest::StatusCode::OK);
    server.terminate();
    let status = tokio::task::block_in_place(|| server.wait(Duration::from_secs(10)));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", server.output());
    assert!(client.get(format!("{}/health/live", server.url)).send().await.is_err(), "nothing listens any more");
}
