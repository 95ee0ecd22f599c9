//! Starts a real server per test on a throwaway database, and talks to it.

use std::collections::HashMap;

use parley_tests::{TestDatabase, TestRedis, TestSqliteFile};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The key every test server signs tokens with, so tests can forge tokens.
pub const TOKEN_SECRET: [u8; 32] = [42; 32];

#[allow(dead_code)]
enum Database {
    Postgres(TestDatabase),
    Sqlite(TestSqliteFile),
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    database: Database,
    /// Starts the server's draining, as SIGTERM would.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// With `PARLEY_TEST_REDIS=1` the server keeps budgets and rooms in Redis,
    /// under a prefix of its own.
    _redis: Option<TestRedis>,
}

/// A response read once: status, headers and JSON body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Asserts the contract's error envelope with `status` and `code`.
    pub fn assert_error(&self, status: StatusCode, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["success"], json!(false), "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], json!(code), "body: {}", self.body);
        assert!(self.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(self.body["meta"]["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    }

    /// The field names listed in a validation error.
    pub fn bad_fields(&self) -> Vec<String> {
        self.body["error"]["details"]["fields"]
            .as_array()
            .map(|fields| fields.iter().filter_map(|f| f["field"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// `data` of a success envelope with `status`.
    pub fn data(&self, status: StatusCode) -> &Value {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["success"], json!(true), "body: {}", self.body);
        &self.body["data"]
    }
}

/// A registered user of a test server.
pub struct TestUser {
    pub id: String,
    pub token: String,
    pub email: String,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts a server with the test defaults plus `overrides`.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let (mut test_app, app) = Self::build(overrides).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            // Dropping the sender (the test ends) is not a stop.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        }));
        test_app.stop = Some(stop);
        test_app
    }

    /// As [`Self::spawn_with`]; sending on (or dropping) the returned sender
    /// runs the server's shutdown path, as SIGTERM does.
    pub async fn spawn_stoppable(overrides: &[(&str, &str)]) -> (Self, tokio::sync::oneshot::Sender<()>) {
        let (test_app, app) = Self::build(overrides).await;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        (test_app, stop)
    }

    async fn build(overrides: &[(&str, &str)]) -> (Self, parley_server::Application) {
        let database = match std::env::var("PARLEY_TEST_STORE").as_deref() {
            Ok("sqlite") => Database::Sqlite(TestSqliteFile::create()),
            _ => Database::Postgres(TestDatabase::create().await),
        };
        let url = match &database {
            Database::Postgres(db) => db.url.clone(),
            Database::Sqlite(file) => file.url.clone(),
        };
        let mut vars: HashMap<String, String> = HashMap::from([
            ("DATABASE_URL".into(), url),
            ("PORT".into(), "0".into()),
            ("ENVIRONMENT".into(), "test".into()),
            ("TOKEN_SECRET".into(), hex::encode(TOKEN_SECRET)),
            ("DATABASE_MAX_CONNECTIONS".into(), "4".into()),
            ("LOG_LEVEL".into(), "warn".into()),
            // Every test client shares one loopback address; the abuse tests lower these.
            ("LOGIN_ATTEMPTS_PER_ADDRESS".into(), "1000000".into()),
            ("REGISTRATIONS_PER_ADDRESS".into(), "1000000".into()),
        ]);
        let redis = (std::env::var("PARLEY_TEST_REDIS").as_deref() == Ok("1")).then(TestRedis::create);
        for (key, value) in redis.iter().flat_map(TestRedis::settings) {
            vars.insert(key.to_owned(), value);
        }
        for (key, value) in overrides {
            vars.insert((*key).to_owned(), (*value).to_owned());
        }
        let settings =
            parley_server::Settings::from_lookup(|name| vars.get(name).cloned()).expect("test settings are valid");
        let app = parley_server::build(settings).await.expect("the server starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        (Self { address, client: reqwest::Client::new(), database, stop: None, _redis: redis }, app)
    }

    /// The URL of the database under this server.
    pub fn database_url(&self) -> &str {
        match &self.database {
            Database::Postgres(db) => &db.url,
            Database::Sqlite(file) => &file.url,
        }
    }

    /// Starts draining the server, as SIGTERM does.
    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Runs `sql` on the server's database, for seeding what the API cannot make quickly.
    pub async fn execute_sql(&self, sql: &str) {
        use diesel::connection::SimpleConnection as _;
        match &self.database {
            Database::Postgres(db) => {
                use diesel_async::{AsyncConnection as _, SimpleAsyncConnection as _};
                let mut conn = diesel_async::AsyncPgConnection::establish(&db.url).await.expect("connect");
                conn.batch_execute(sql).await.expect("seed SQL runs");
            }
            Database::Sqlite(file) => {
                use diesel::Connection as _;
                let path = file.url.trim_start_matches("sqlite://").to_owned();
                let sql = sql.to_owned();
                tokio::task::spawn_blocking(move || {
                    let mut conn = diesel::SqliteConnection::establish(&path).expect("open");
                    conn.batch_execute(&sql).expect("seed SQL runs");
                })
                .await
                .expect("seeding finished");
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.database, Database::Postgres(_))
    }

    /// Drops the PostgreSQL database under the running server.
    pub fn take_database(&mut self) -> Option<TestDatabase> {
        match std::mem::replace(&mut self.database, Database::Sqlite(TestSqliteFile::create())) {
            Database::Postgres(db) => Some(db),
            other => {
                self.database = other;
                None
            }
        }
    }

    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        read(response).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::POST, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.request(Method::PUT, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::PATCH, path, token, None).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Reply {
        self.request(Method::DELETE, path, token, None).await
    }

    /// Sends raw bytes as a JSON body.
    pub async fn post_raw(&self, path: &str, token: Option<&str>, body: &'static str) -> Reply {
        let mut request =
            self.client.post(format!("{}{path}", self.address)).header("content-type", "application/json");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        read(request.body(body).send().await.expect("the server answers")).await
    }

    pub async fn register(&self, name: &str) -> TestUser {
        let email = format!("{}-{}@example.com", name.to_lowercase(), uuid::Uuid::new_v4().simple());
        let reply = self
            .post("/api/v1/auth/register", None, json!({"email": email, "password": "correct horse", "name": name}))
            .await;
        let data = reply.data(StatusCode::CREATED);
        TestUser {
            id: data["user"]["id"].as_str().expect("user id").to_owned(),
            token: data["access_token"].as_str().expect("token").to_owned(),
            email,
        }
    }
}

pub async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a readable body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, headers, body }
}

/// A token signed with the test key, for `sub`, expiring at `exp` (RFC 3339).
pub fn forge_token(key: &[u8; 32], sub: &str, exp: &str) -> String {
    use pasetors::claims::Claims;
    use pasetors::keys::SymmetricKey;
    use pasetors::version4::V4;

    let key = SymmetricKey::<V4>::from(key).expect("a 32-byte key");
    let mut claims = Claims::new().expect("claims");
    claims.issued_at("2020-01-01T00:00:00+00:00").expect("iat");
    claims.not_before("2020-01-01T00:00:00+00:00").expect("nbf");
    claims.expiration(exp).expect("exp");
    claims.subject(sub).expect("sub");
    claims.token_identifier(&uuid::Uuid::new_v4().to_string()).expect("jti");
    pasetors::local::encrypt(&key, &claims, None, None).expect("a token")
}
