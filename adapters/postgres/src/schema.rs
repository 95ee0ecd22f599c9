//! Diesel table definitions, kept by hand in step with `migrations/postgres`.

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    tasks (id) {
        id -> Uuid,
        user_id -> Uuid,
        title -> Text,
        description -> Text,
        priority -> Text,
        due_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        version -> Integer,
    }
}

diesel::table! {
    task_revisions (id) {
        id -> Uuid,
        task_id -> Uuid,
        user_id -> Uuid,
        version -> Integer,
        action -> Text,
        changes -> Jsonb,
        actor -> Text,
        origin -> Text,
        conversation_id -> Nullable<Uuid>,
        tool_call_id -> Nullable<Text>,
        before -> Nullable<Jsonb>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    reverted_tool_calls (user_id, tool_call_id) {
        user_id -> Uuid,
        tool_call_id -> Text,
        reverted_at -> Timestamptz,
    }
}

diesel::table! {
    plans (id) {
        id -> Uuid,
        user_id -> Uuid,
        conversation_id -> Uuid,
        origin -> Text,
        changes -> Jsonb,
        status -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        decided_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    conversations (id) {
        id -> Uuid,
        user_id -> Uuid,
        title -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    messages (id) {
        id -> Uuid,
        conversation_id -> Uuid,
        role -> Text,
        content -> Text,
        tool_calls -> Jsonb,
        created_at -> Timestamptz,
        context_chars -> Int4,
    }
}

diesel::joinable!(tasks -> users (user_id));
diesel::joinable!(conversations -> users (user_id));
diesel::joinable!(messages -> conversations (conversation_id));

diesel::allow_tables_to_appear_in_same_query!(users, tasks, task_revisions, conversations, messages);

diesel::table! {
    sessions (id) {
        id -> Uuid,
        name -> Text,
        max_users -> SmallInt,
        host_id -> Uuid,
        created_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    session_messages (id) {
        id -> Uuid,
        session_id -> Uuid,
        user_id -> Nullable<Uuid>,
        user_name -> Text,
        message -> Text,
        is_spirit -> Bool,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(session_messages -> sessions (session_id));

diesel::allow_tables_to_appear_in_same_query!(sessions, session_messages);

diesel::table! {
    item_feedback (conversation_id, item_id) {
        conversation_id -> Uuid,
        item_id -> Text,
        kind -> Text,
        created_at -> Timestamptz,
    }
}
