//! `UserRepository` on SQLite.

use async_trait::async_trait;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use parley_kernel::{StoreError, UserId};
use parley_users::{Credentials, DisplayName, Email, NewUser, PasswordHash, RegisterError, User, UserRepository};

use crate::SqliteStore;
use crate::error::SqliteError;
use crate::rows::{CorruptRow, corrupt, from_micros, parse_uuid, to_micros};
use crate::schema::users;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::sqlite::Sqlite))]
struct UserRow {
    id: String,
    email: String,
    name: String,
    password_hash: String,
    created_at: i64,
}

impl UserRow {
    fn from_new(user: &NewUser) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            password_hash: user.password_hash.as_str().to_owned(),
            created_at: to_micros(user.created_at),
        }
    }

    fn into_credentials(self) -> Result<Credentials, CorruptRow> {
        let user = User {
            id: UserId::from_uuid(parse_uuid(&self.id)?),
            email: Email::parse(&self.email).map_err(corrupt)?,
            name: DisplayName::parse(&self.name).map_err(corrupt)?,
            created_at: from_micros(self.created_at)?,
        };
        Ok(Credentials { user, password_hash: PasswordHash::new(self.password_hash) })
    }
}

/// The column of the unique index on emails, as SQLite's error message names it.
const EMAIL_COLUMN: &str = "users.email";

/// Users in the `users` table; emails are stored as `Email` normalised them.
pub struct SqliteUserRepository {
    store: SqliteStore,
}

impl SqliteUserRepository {
    pub(crate) fn new(store: SqliteStore) -> Self {
        Self { store }
    }
}

#[async_trait]
impl UserRepository for SqliteUserRepository {
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn create(&self, user: NewUser) -> Result<User, RegisterError> {
        let row = UserRow::from_new(&user);
        let inserted = self
            .store
            .run(move |conn| {
                diesel::insert_into(users::table).values(&row).execute(conn)?;
                Ok::<_, SqliteError>(())
            })
            .await;
        match inserted {
            Ok(()) => Ok(User { id: user.id, email: user.email, name: user.name, created_at: user.created_at }),
            Err(error) if error.violates_unique(EMAIL_COLUMN) => Err(RegisterError::EmailTaken),
            Err(error) => Err(RegisterError::Store(error.into())),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn find_by_email(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        let email = email.as_str().to_owned();
        let row = self
            .store
            .run(move |conn| {
                let row =
                    users::table.filter(users::email.eq(email)).select(UserRow::as_select()).first(conn).optional()?;
                Ok::<_, SqliteError>(row.map(UserRow::into_credentials).transpose()?)
            })
            .await?;
        Ok(row)
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let key = id.to_string();
        let row = self
            .store
            .run(move |conn| {
                let row = users::table.find(key).select(UserRow::as_select()).first(conn).optional()?;
                Ok::<_, SqliteError>(row.map(UserRow::into_credentials).transpose()?)
            })
            .await?;
        Ok(row.map(|credentials| credentials.user))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let pinged = self.store.run(|conn| conn.batch_execute("SELECT 1").map_err(SqliteError::from)).await;
        pinged.map_err(|error| match StoreError::from(error) {
            StoreError::Unexpected(cause) => StoreError::Unavailable(cause),
            other @ (StoreError::Unavailable(_) | StoreError::OwnerGone) => other,
        })
    }
}
