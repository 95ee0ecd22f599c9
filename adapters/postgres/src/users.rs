//! `UserRepository` on PostgreSQL.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use parley_kernel::{StoreError, Timestamp, UserId};
use parley_users::{Credentials, DisplayName, Email, NewUser, PasswordHash, RegisterError, User, UserRepository};
use uuid::Uuid;

use crate::error::PgError;
use crate::pool::{PgPool, read, write};
use crate::schema::users;

/// The unique index on `lower(email)` (see the users migration).
const EMAIL_INDEX: &str = "users_email_lower_key";

/// Stores users in the `users` table.
#[derive(Clone)]
pub struct PgUserRepository {
    pool: PgPool,
}

impl PgUserRepository {
    pub(crate) fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

// Every field is bound as a value. Diesel's default (each field may become
// DEFAULT) marks the INSERT uncacheable: it was prepared again, one more round
// trip, on every call.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg), treat_none_as_default_value = false)]
struct UserRow {
    id: Uuid,
    email: String,
    name: String,
    password_hash: String,
    created_at: Timestamp,
}

impl UserRow {
    fn into_credentials(self) -> Result<Credentials, PgError> {
        let user = User {
            id: UserId::from_uuid(self.id),
            email: Email::parse(&self.email).map_err(PgError::corrupt)?,
            name: DisplayName::parse(&self.name).map_err(PgError::corrupt)?,
            created_at: self.created_at,
        };
        Ok(Credentials { user, password_hash: PasswordHash::new(self.password_hash) })
    }
}

#[async_trait]
impl UserRepository for PgUserRepository {
    #[tracing::instrument(skip_all, fields(user_id = %user.id))]
    async fn create(&self, user: NewUser) -> Result<User, RegisterError> {
        let row = UserRow {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            name: user.name.as_str().to_owned(),
            password_hash: user.password_hash.as_str().to_owned(),
            created_at: user.created_at,
        };
        let inserted = write(&self.pool, async |conn| {
            diesel::insert_into(users::table).values(&row).execute(conn).await?;
            Ok::<_, PgError>(())
        })
        .await;
        match inserted {
            Ok(()) => Ok(User { id: user.id, email: user.email, name: user.name, created_at: user.created_at }),
            Err(error) if error.violates_unique(EMAIL_INDEX) => Err(RegisterError::EmailTaken),
            Err(error) => Err(RegisterError::Store(error.into())),
        }
    }

    #[tracing::instrument(skip_all)]
    async fn find_by_email(&self, email: &Email) -> Result<Option<Credentials>, StoreError> {
        let found = read(&self.pool, move || {
            async move |conn| {
                let row = users::table
                    .filter(diesel::dsl::sql::<diesel::sql_types::Text>("lower(email)").eq(email.as_str()))
                    .select(UserRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                row.map(UserRow::into_credentials).transpose()
            }
        })
        .await?;
        Ok(found)
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn get(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let found = read(&self.pool, move || {
            async move |conn| {
                let row = users::table.find(id.as_uuid()).select(UserRow::as_select()).first(conn).await.optional()?;
                row.map(UserRow::into_credentials).transpose()
            }
        })
        .await?;
        Ok(found.map(|credentials| credentials.user))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        read(&self.pool, move || {
            async move |conn| {
                diesel::sql_query("SELECT 1").execute(conn).await?;
                Ok::<_, PgError>(())
            }
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserting_a_user_reuses_its_prepared_statement() {
        let row = UserRow {
            id: Uuid::nil(),
            email: "a@b.c".to_owned(),
            name: "A".to_owned(),
            password_hash: "h".to_owned(),
            created_at: Timestamp::UNIX_EPOCH,
        };
        assert!(crate::statement_is_cached(&diesel::insert_into(users::table).values(&row)));
    }
}
