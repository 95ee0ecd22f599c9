//! The tasks section: every operation, its errors, isolation and pagination.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestUser};

async fn create(app: &TestApp, user: &TestUser, body: Value) -> Value {
    app.post("/api/v1/tasks", Some(&user.token), body).await.data(StatusCode::CREATED).clone()
}

fn id(task: &Value) -> String {
    task["id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn create_then_get_returns_the_full_task() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, json!({"title": "  Buy milk  "})).await;
    assert_eq!(task["title"], json!("Buy milk"));
    assert_eq!(task["description"], json!(""));
    assert_eq!(task["priority"], json!("medium"));
    assert_eq!(task["completed"], json!(false));
    assert_eq!(task["due_at"], Value::Null);
    assert_eq!(task["completed_at"], Value::Null);
    assert_eq!(task["created_at"], task["updated_at"]);
    let fetched = app.get(&format!("/api/v1/tasks/{}", id(&task)), Some(&ada.token)).await;
    assert_eq!(fetched.data(StatusCode::OK), &task);
}

#[tokio::test]
async fn create_with_every_field() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(
        &app,
        &ada,
        json!({"title": "Ship", "description": "the release", "priority": "high", "due_at": "2026-12-01T10:00:00+02:00"}),
    )
    .await;
    assert_eq!(task["description"], json!("the release"));
    assert_eq!(task["priority"], json!("high"));
    assert_eq!(task["due_at"], json!("2026-12-01T08:00:00.000000Z"));
}

#[tokio::test]
async fn create_refuses_bad_fields_and_names_them_all() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let reply =
        app.post("/api/v1/tasks", Some(&ada.token), json!({"title": " ", "description": "d".repeat(1001)})).await;
    reply.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(reply.bad_fields(), vec!["title", "description"]);
    let reply = app
        .post("/api/v1/tasks", Some(&ada.token), json!({"title": "x", "priority": "urgent", "due_at": "tomorrow"}))
        .await;
    assert_eq!(reply.bad_fields(), vec!["priority", "due_at"]);
    let reply = app.post("/api/v1/tasks", Some(&ada.token), json!({"description": "no title"})).await;
    assert_eq!(reply.bad_fields(), vec!["title"]);
    let listed = app.get("/api/v1/tasks", Some(&ada.token)).await;
    assert_eq!(listed.body["meta"]["total"], json!(0), "nothing stored by refused requests");
}

#[tokio::test]
async fn length_boundaries_count_characters() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    create(&app, &ada, json!({"title": "é".repeat(200), "description": "ü".repeat(1000)})).await;
    let title = app.post("/api/v1/tasks", Some(&ada.token), json!({"title": "é".repeat(201)})).await;
    assert_eq!(title.bad_fields(), vec!["title"]);
    let description =
        app.post("/api/v1/tasks", Some(&ada.token), json!({"title": "x", "description": "ü".repeat(1001)})).await;
    assert_eq!(description.bad_fields(), vec!["description"]);
}

#[tokio::test]
async fn unicode_and_sql_looking_titles_are_stored_verbatim() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    for title in ["日本語のタスク 🚀", "'; DROP TABLE tasks; --", "Robert'); DELETE FROM users;--", "100% _done_ \\o/"]
    {
        let task = create(&app, &ada, json!({"title": title})).await;
        assert_eq!(task["title"], json!(title));
    }
    let listed = app.get("/api/v1/tasks", Some(&ada.token)).await;
    assert_eq!(listed.body["meta"]["total"], json!(4));
}

#[tokio::test]
async fn update_replaces_given_fields_only() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task =
        create(&app, &ada, json!({"title": "Draft", "description": "keep me", "due_at": "2026-12-01T00:00:00Z"})).await;
    let path = format!("/api/v1/tasks/{}", id(&task));
    let updated = app.put(&path, Some(&ada.token), json!({"title": "Final", "priority": "low"})).await;
    let data = updated.data(StatusCode::OK);
    assert_eq!(data["title"], json!("Final"));
    assert_eq!(data["priority"], json!("low"));
    assert_eq!(data["description"], json!("keep me"));
    assert_eq!(data["due_at"], task["due_at"]);
    assert_ne!(data["updated_at"], task["updated_at"]);
    let cleared = app.put(&path, Some(&ada.token), json!({"due_at": null, "completed": true})).await;
    let data = cleared.data(StatusCode::OK);
    assert_eq!(data["due_at"], Value::Null);
    assert_eq!(data["completed"], json!(true));
    assert!(data["completed_at"].is_string());
    let bad = app.put(&path, Some(&ada.token), json!({"title": "", "completed": "yes"})).await;
    bad.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
    assert_eq!(bad.bad_fields(), vec!["completed"]);
    let bad = app.put(&path, Some(&ada.token), json!({"title": ""})).await;
    assert_eq!(bad.bad_fields(), vec!["title"]);
    let unchanged = app.get(&path, Some(&ada.token)).await;
    assert_eq!(unchanged.data(StatusCode::OK)["title"], json!("Final"));
}

#[tokio::test]
async fn complete_toggles_and_keeps_completed_at_consistent() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, json!({"title": "Toggle me"})).await;
    let path = format!("/api/v1/tasks/{}/complete", id(&task));
    let done = app.patch(&path, Some(&ada.token)).await;
    let data = done.data(StatusCode::OK).clone();
    assert_eq!(data["completed"], json!(true));
    assert!(data["completed_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    let undone = app.patch(&path, Some(&ada.token)).await;
    let data = undone.data(StatusCode::OK);
    assert_eq!(data["completed"], json!(false));
    assert_eq!(data["completed_at"], Value::Null);
}

#[tokio::test]
async fn delete_answers_deleted_and_the_task_is_gone() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, json!({"title": "Delete me"})).await;
    let path = format!("/api/v1/tasks/{}", id(&task));
    let deleted = app.delete(&path, Some(&ada.token)).await;
    assert_eq!(deleted.data(StatusCode::OK), &json!({"id": id(&task), "deleted": true}));
    app.get(&path, Some(&ada.token)).await.assert_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    app.delete(&path, Some(&ada.token)).await.assert_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
}

#[tokio::test]
async fn another_users_task_is_forbidden_on_every_verb_and_unchanged() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let eve = app.register("Eve").await;
    let task = create(&app, &ada, json!({"title": "Private"})).await;
    let path = format!("/api/v1/tasks/{}", id(&task));
    app.get(&path, Some(&eve.token)).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.put(&path, Some(&eve.token), json!({"title": "Hacked"})).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.patch(&format!("{path}/complete"), Some(&eve.token)).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    app.delete(&path, Some(&eve.token)).await.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let listed = app.get("/api/v1/tasks", Some(&eve.token)).await;
    assert_eq!(listed.data(StatusCode::OK), &json!([]));
    let still = app.get(&path, Some(&ada.token)).await;
    assert_eq!(still.data(StatusCode::OK), &task);
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_task_not_found() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let reply = app.get(&format!("/api/v1/tasks/{unknown}"), Some(&ada.token)).await;
    reply.assert_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    assert_eq!(reply.body["error"]["details"]["task_id"], json!(unknown));
    app.get("/api/v1/tasks/not-a-uuid", Some(&ada.token)).await.assert_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    app.patch("/api/v1/tasks/123/complete", Some(&ada.token))
        .await
        .assert_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    app.put("/api/v1/tasks/xyz", Some(&ada.token), json!({"title": "t"}))
        .await
        .assert_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
}

#[tokio::test]
async fn every_operation_needs_a_token() {
    let app = TestApp::spawn().await;
    let some = uuid::Uuid::now_v7();
    app.get("/api/v1/tasks", None).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.post("/api/v1/tasks", None, json!({"title": "x"})).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.get(&format!("/api/v1/tasks/{some}"), None).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
    app.delete(&format!("/api/v1/tasks/{some}"), None).await.assert_error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED");
}

#[tokio::test]
async fn empty_list_has_null_cursor_and_zero_total() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let reply = app.get("/api/v1/tasks", Some(&ada.token)).await;
    assert_eq!(reply.data(StatusCode::OK), &json!([]));
    assert_eq!(reply.body["meta"]["next_cursor"], Value::Null);
    assert_eq!(reply.body["meta"]["total"], json!(0));
}

#[tokio::test]
async fn pagination_walk_sees_every_task_once_newest_first() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let mut created = Vec::new();
    for n in 0..23 {
        created.push(id(&create(&app, &ada, json!({"title": format!("task {n}")})).await));
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/tasks?limit=5&cursor={c}"),
            None => "/api/v1/tasks?limit=5".to_owned(),
        };
        let reply = app.get(&path, Some(&ada.token)).await;
        assert_eq!(reply.body["meta"]["total"], json!(23));
        let items = reply.data(StatusCode::OK).as_array().cloned().unwrap_or_default();
        assert!(items.len() <= 5);
        seen.extend(items.iter().map(id));
        match reply.body["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    created.reverse();
    assert_eq!(seen, created, "newest first, each exactly once");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 23);
}

#[tokio::test]
async fn filters_by_completion_and_title_with_literal_wildcards() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let milk = create(&app, &ada, json!({"title": "Buy MILK"})).await;
    create(&app, &ada, json!({"title": "100% done"})).await;
    create(&app, &ada, json!({"title": "1000 done"})).await;
    create(&app, &ada, json!({"title": "snake_case"})).await;
    create(&app, &ada, json!({"title": "snakeXcase"})).await;
    app.patch(&format!("/api/v1/tasks/{}/complete", id(&milk)), Some(&ada.token)).await.data(StatusCode::OK);

    let titles = |reply: &crate::support::Reply| -> Vec<String> {
        reply.body["data"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t["title"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let done = app.get("/api/v1/tasks?completed=true", Some(&ada.token)).await;
    assert_eq!(titles(&done), vec!["Buy MILK"]);
    let pending = app.get("/api/v1/tasks?completed=false", Some(&ada.token)).await;
    assert_eq!(pending.body["meta"]["total"], json!(4));
    let milk = app.get("/api/v1/tasks?q=milk", Some(&ada.token)).await;
    assert_eq!(titles(&milk), vec!["Buy MILK"]);
    let percent = app.get("/api/v1/tasks?q=0%25", Some(&ada.token)).await;
    assert_eq!(titles(&percent), vec!["100% done"]);
    let underscore = app.get("/api/v1/tasks?q=e_c", Some(&ada.token)).await;
    assert_eq!(titles(&underscore), vec!["snake_case"]);
    let backslash = app.get("/api/v1/tasks?q=%5C", Some(&ada.token)).await;
    assert_eq!(backslash.body["meta"]["total"], json!(0));
}

#[tokio::test]
async fn bad_list_parameters_are_validation_errors() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
        ("completed=maybe", "completed"),
    ] {
        let reply = app.get(&format!("/api/v1/tasks?{query}"), Some(&ada.token)).await;
        reply.assert_error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR");
        assert_eq!(reply.bad_fields(), vec![field], "{query}");
    }
    let ok = app.get("/api/v1/tasks?limit=100", Some(&ada.token)).await;
    ok.data(StatusCode::OK);
}

#[tokio::test]
async fn totals_are_exact_up_to_ten_thousand_then_a_lower_bound() {
    let app = TestApp::spawn().await;
    let user = app.register("Ann").await;
    let small = app.get("/api/v1/tasks?limit=5", Some(&user.token)).await;
    assert_eq!(small.body["meta"]["total"], json!(0));
    assert_eq!(small.body["meta"]["total_relation"], json!("eq"));
    let seed = if app.is_postgres() {
        format!(
            "INSERT INTO tasks (id, user_id, title, priority, created_at, updated_at) \
             SELECT gen_random_uuid(), '{}', 'seeded ' || n, 'medium', now() - n * interval '1 ms', now() \
             FROM generate_series(1, 10001) AS n",
            user.id
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10001) \
             INSERT INTO tasks (id, user_id, title, title_folded, priority, created_at, updated_at) \
             SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-7' || substr(lower(hex(randomblob(2))), 2) \
                    || '-a' || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))), \
                    '{}', 'seeded ' || i, 'seeded ' || i, 'medium', 1700000000000000 - i, 1700000000000000 FROM n",
            user.id
        )
    };
    app.execute_sql(&seed).await;
    let big = app.get("/api/v1/tasks?limit=5", Some(&user.token)).await;
    assert_eq!(big.data(StatusCode::OK).as_array().map(Vec::len), Some(5));
    assert_eq!(big.body["meta"]["total"], json!(10_000));
    assert_eq!(big.body["meta"]["total_relation"], json!("gte"));
    let filtered = app.get("/api/v1/tasks?limit=5&q=seeded%2010001", Some(&user.token)).await;
    assert_eq!(filtered.body["meta"]["total"], json!(1));
    assert_eq!(filtered.body["meta"]["total_relation"], json!("eq"));
    let open = app.get("/api/v1/tasks?limit=5&completed=false", Some(&user.token)).await;
    assert_eq!((&open.body["meta"]["total"], &open.body["meta"]["total_relation"]), (&json!(10_000), &json!("gte")));
    let done = app.get("/api/v1/tasks?limit=5&completed=true", Some(&user.token)).await;
    assert_eq!((&done.body["meta"]["total"], &done.body["meta"]["total_relation"]), (&json!(0), &json!("eq")));

    // Exactly the cap is still exact.
    app.execute_sql("DELETE FROM tasks WHERE title = 'seeded 1'").await;
    for query in ["limit=5", "limit=5&completed=false"] {
        let at_cap = app.get(&format!("/api/v1/tasks?{query}"), Some(&user.token)).await;
        assert_eq!(at_cap.body["meta"]["total"], json!(10_000), "{query}");
        assert_eq!(at_cap.body["meta"]["total_relation"], json!("eq"), "{query}");
    }
}
