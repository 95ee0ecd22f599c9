//! Diesel table definitions, kept by hand in step with `migrations/sqlite`
//! (a unit test loads every column against the migrated schema).

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    tasks (id) {
        id -> Text,
        user_id -> Text,
        title -> Text,
        title_folded -> Text,
        description -> Text,
        priority -> Text,
        due_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        completed_at -> Nullable<BigInt>,
        version -> Integer,
    }
}

diesel::table! {
    task_revisions (id) {
        id -> Text,
        task_id -> Text,
        user_id -> Text,
        version -> Integer,
        action -> Text,
        changes -> Text,
        actor -> Text,
        origin -> Text,
        conversation_id -> Nullable<Text>,
        tool_call_id -> Nullable<Text>,
        before -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    reverted_tool_calls (user_id, tool_call_id) {
        user_id -> Text,
        tool_call_id -> Text,
        reverted_at -> BigInt,
    }
}

diesel::table! {
    plans (id) {
        id -> Text,
        user_id -> Text,
        conversation_id -> Text,
        origin -> Text,
        changes -> Text,
        status -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        decided_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    conversations (id) {
        id -> Text,
        user_id -> Text,
        title -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        conversation_id -> Text,
        role -> Text,
        content -> Text,
        tool_calls -> Text,
        created_at -> BigInt,
        context_chars -> Integer,
    }
}

diesel::joinable!(tasks -> users (user_id));
diesel::joinable!(conversations -> users (user_id));
diesel::joinable!(messages -> conversations (conversation_id));

diesel::allow_tables_to_appear_in_same_query!(users, tasks, conversations, messages);

diesel::table! {
    sessions (id) {
        id -> Text,
        name -> Text,
        max_users -> SmallInt,
        host_id -> Text,
        created_at -> BigInt,
        closed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    session_messages (id) {
        id -> Text,
        session_id -> Text,
        user_id -> Nullable<Text>,
        user_name -> Text,
        message -> Text,
        is_spirit -> Bool,
        created_at -> BigInt,
    }
}

diesel::joinable!(session_messages -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(sessions, session_messages);

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel_migrations::MigrationHarness;

    use super::*;
    use crate::store::MIGRATIONS;

    /// Loads every declared column, so a name or type that drifted from
    /// the migrations fails here; then checks the migrations revert cleanly.
    #[test]
    fn schema_matches_migrations_and_they_revert() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut conn = SqliteConnection::establish(":memory:")?;
        conn.run_pending_migrations(MIGRATIONS)?;
        users::table.select(users::all_columns).load::<(String, String, String, String, i64)>(&mut conn)?;
        tasks::table.select(tasks::all_columns).load::<(
            String,
            String,
            String,
            String,
            String,
            String,
            Option<i64>,
            i64,
            i64,
            Option<i64>,
            i32,
        )>(&mut conn)?;
        task_revisions::table.select(task_revisions::all_columns).load::<(
            String,
            String,
            String,
            i32,
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
        )>(&mut conn)?;
        reverted_tool_calls::table.select(reverted_tool_calls::all_columns).load::<(String, String, i64)>(&mut conn)?;
        plans::table.select(plans::all_columns).load::<(
            String,
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            Option<i64>,
        )>(&mut conn)?;
        conversations::table
            .select(conversations::all_columns)
            .load::<(String, String, String, i64, i64)>(&mut conn)?;
        messages::table
            .select(messages::all_columns)
            .load::<(String, String, String, String, String, i64, i32)>(&mut conn)?;
        sessions::table
            .select(sessions::all_columns)
            .load::<(String, String, i16, String, i64, Option<i64>)>(&mut conn)?;
        session_messages::table.select(session_messages::all_columns).load::<(
            String,
            String,
            Option<String>,
            String,
            String,
            bool,
            i64,
        )>(&mut conn)?;
        conn.revert_all_migrations(MIGRATIONS)?;
        conn.run_pending_migrations(MIGRATIONS)?;
        Ok(())
    }
}

diesel::table! {
    item_feedback (conversation_id, item_id) {
        conversation_id -> Text,
        item_id -> Text,
        kind -> Text,
        created_at -> BigInt,
    }
}
