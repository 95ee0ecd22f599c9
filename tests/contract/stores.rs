//! Opening each adapter on a fresh database, and small builders shared by the checks.

use std::any::Any;

use chrono::TimeDelta;
use parley_kernel::{Clock, SystemClock, Timestamp, UserId};
use parley_tests::{TestDatabase, TestSqliteFile};
use parley_users::{DisplayName, Email, NewUser, PasswordHash};

/// One store's repositories (the server's own bundle, built by its one
/// `match` on the URL), on a database no other test sees.
pub struct Stores {
    stores: parley_server::Stores,
    /// The database's owner; dropped last, after the pool, to remove it.
    _database: Box<dyn Any + Send>,
}

impl std::ops::Deref for Stores {
    type Target = parley_server::Stores;

    fn deref(&self) -> &parley_server::Stores {
        &self.stores
    }
}

async fn migrated(url: &str, database: Box<dyn Any + Send>) -> Stores {
    let stores = parley_server::Stores::connect(url, 4).expect("open the store");
    stores.migrate().await.expect("migrate the store");
    Stores { stores, _database: database }
}

/// A migrated SQLite store on a fresh file.
pub async fn sqlite() -> Stores {
    let file = TestSqliteFile::create();
    migrated(&file.url.clone(), Box::new(file)).await
}

/// A migrated PostgreSQL store on a fresh database.
pub async fn postgres() -> Stores {
    let database = TestDatabase::create().await;
    migrated(&database.url.clone(), Box::new(database)).await
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
