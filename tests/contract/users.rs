//! `UserRepository` contract.

use parley_users::{Email, RegisterError};

use crate::stores::{Stores, new_user};

pub async fn user_create_returns_the_stored_user(stores: Stores) {
    let new = new_user("ada@example.com");

    let user = stores.users.create(new.clone()).await.expect("create");

    assert_eq!(user.id, new.id);
    assert_eq!(user.email, new.email);
    assert_eq!(user.name, new.name);
    assert_eq!(user.created_at, new.created_at);
}

pub async fn user_duplicate_email_is_taken(stores: Stores) {
    stores.users.create(new_user("ada@example.com")).await.expect("first");

    let second = stores.users.create(new_user("ada@example.com")).await;

    assert!(matches!(second, Err(RegisterError::EmailTaken)), "{second:?}");
}

pub async fn user_duplicate_email_in_other_case_is_taken(stores: Stores) {
    stores.users.create(new_user("ada@example.com")).await.expect("first");

    // `Email` lower-cases what it parses; the store must see the same address.
    let second = stores.users.create(new_user("  ADA@Example.COM ")).await;

    assert!(matches!(second, Err(RegisterError::EmailTaken)), "{second:?}");
}

pub async fn user_find_by_email(stores: Stores) {
    let new = new_user("grace@example.com");
    let created = stores.users.create(new.clone()).await.expect("create");

    let unknown = stores.users.find_by_email(&Email::parse("nobody@example.com").expect("email")).await;
    let found = stores.users.find_by_email(&Email::parse("Grace@Example.com").expect("email")).await;

    assert!(matches!(unknown, Ok(None)), "{unknown:?}");
    let credentials = found.expect("find").expect("some");
    assert_eq!(credentials.user, created);
    assert_eq!(credentials.password_hash, new.password_hash);
}

pub async fn user_get(stores: Stores) {
    let created = stores.users.create(new_user("linus@example.com")).await.expect("create");

    let found = stores.users.get(created.id).await.expect("get");
    let unknown = stores.users.get(parley_kernel::UserId::new()).await.expect("get unknown");

    assert_eq!(found, Some(created));
    assert_eq!(unknown, None);
}

pub async fn user_ping(stores: Stores) {
    stores.users.ping().await.expect("a reachable store answers the ping");
}
