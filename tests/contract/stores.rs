//! Opening each adapter on a fresh database, and small builders shared by the checks.

use std::any::Any;
use std::sync::Arc;

use chrono::TimeDelta;
use parley_conversations::ConversationRepository;
use parley_kernel::{Clock, SystemClock, Timestamp, UserId};
use parley_sessions::SessionRepository;
use parley_tasks::TaskRepository;
use parley_tests::{TestDatabase, TestSqliteFile};
use parley_users::{DisplayName, Email, NewUser, PasswordHash, UserRepository};

/// The three repositories of one store, on a database no other test sees.
pub struct Stores {
    pub users: Arc<dyn UserRepository>,
    pub tasks: Arc<dyn TaskRepository>,
    pub conversations: Arc<dyn ConversationRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    /// The database's owner; dropped last, after the pool, to remove it.
    _database: Box<dyn Any + Send>,
}

/// A migrated SQLite store on a fresh file.
pub async fn sqlite() -> Stores {
    let file = TestSqliteFile::create();
    let store = parley_sqlite::SqliteStore::connect(&file.url, 4).expect("open SQLite store");
    store.migrate().await.expect("migrate SQLite store");
    Stores {
        users: store.users(),
        tasks: store.tasks(),
        conversations: store.conversations(),
        sessions: store.sessions(),
        _database: Box::new(file),
    }
}

/// A migrated PostgreSQL store on a fresh database.
pub async fn postgres() -> Stores {
    let database = TestDatabase::create().await;
    let store = parley_postgres::PgStore::connect(&database.url, 4).expect("open PostgreSQL store");
    store.migrate().await.expect("migrate PostgreSQL store");
    Stores {
        users: store.users(),
        tasks: store.tasks(),
        conversations: store.conversations(),
        sessions: store.sessions(),
        _database: Box::new(database),
    }
}

/// Now, at the microsecond precision every store keeps.
pub fn now() -> Timestamp {
    SystemClock.now()
}

/// `seconds` after a fixed instant, for tests that need a known order.
pub fn at(seconds: i64) -> Timestamp {
    chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("valid instant") + TimeDelta::seconds(seconds)
}

pub fn new_user(email: &str) -> NewUser {
    NewUser {
        id: UserId::new(),
        email: Email::parse(email).expect("valid email"),
        name: DisplayName::parse("Ada Lovelace").expect("valid name"),
        password_hash: PasswordHash::new(format!("$argon2id$v=19$m=19456,t=2,p=1$salt${email}")),
        created_at: now(),
    }
}

/// A stored user with a unique email: tasks and conversations need an owner.
pub async fn user(stores: &Stores) -> UserId {
    let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
    stores.users.create(new_user(&email)).await.expect("create user").id
}
