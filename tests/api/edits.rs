//! Safe AI edits: versions and `If-Match`, revisions with attribution, and
//! undoing an assistant's tool call (API.md "Safe AI edits").

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::chat::{sse, text_chunk, tool_call_chunk};
use crate::support::{Reply, TestApp, TestUser, read};

async fn create(app: &TestApp, user: &TestUser, title: &str) -> Value {
    app.post("/api/v1/tasks", Some(&user.token), json!({"title": title})).await.data(StatusCode::CREATED).clone()
}

fn id(value: &Value) -> String {
    value["id"].as_str().unwrap_or_default().to_owned()
}

/// `method path` with `If-Match: if_match` and an optional JSON body.
async fn matching(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &TestUser,
    if_match: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.address))
        .bearer_auth(&user.token)
        .header("If-Match", if_match);
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.expect("the server answers")).await
}

async fn chat(app: &TestApp, user: &TestUser, message: &str) -> Value {
    app.post("/api/v1/chat", Some(&user.token), json!({ "message": message })).await.data(StatusCode::OK).clone()
}

async fn revisions(app: &TestApp, user: &TestUser, task: &str) -> Vec<Value> {
    let reply = app.get(&format!("/api/v1/tasks/{task}/revisions"), Some(&user.token)).await;
    reply.data(StatusCode::OK).as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn versions_count_every_change_and_the_etag_names_them() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let created = app.post("/api/v1/tasks", Some(&ada.token), json!({"title": "Ship"})).await;
    assert_eq!(created.headers.get("etag").map(|v| v.as_bytes()), Some(&b"\"1\""[..]));
    let task = created.data(StatusCode::CREATED).clone();
    assert_eq!(task["version"], json!(1));
    let path = format!("/api/v1/tasks/{}", id(&task));

    let updated = app.put(&path, Some(&ada.token), json!({"title": "Ship it"})).await;
    assert_eq!(updated.data(StatusCode::OK)["version"], json!(2));
    let toggled = app.patch(&format!("{path}/complete"), Some(&ada.token)).await;
    assert_eq!(toggled.headers.get("etag").map(|v| v.as_bytes()), Some(&b"\"3\""[..]));
    let fetched = app.get(&path, Some(&ada.token)).await;
    assert_eq!(fetched.headers.get("etag").map(|v| v.as_bytes()), Some(&b"\"3\""[..]));
    assert_eq!(fetched.data(StatusCode::OK)["version"], json!(3));
}

#[tokio::test]
async fn a_stale_if_match_is_412_with_the_current_task_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, "Ship").await;
    let path = format!("/api/v1/tasks/{}", id(&task));
    app.put(&path, Some(&ada.token), json!({"title": "Ship it"})).await.data(StatusCode::OK);

    let stale = matching(&app, Method::PUT, &path, &ada, "\"1\"", Some(json!({"title": "Overwrite"}))).await;
    stale.assert_error(StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    assert_eq!(stale.body["error"]["details"]["current"]["title"], json!("Ship it"));
    assert_eq!(stale.body["error"]["details"]["current"]["version"], json!(2));
    let toggle = matching(&app, Method::PATCH, &format!("{path}/complete"), &ada, "\"1\"", None).await;
    toggle.assert_error(StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    let delete = matching(&app, Method::DELETE, &path, &ada, "\"1\"", None).await;
    delete.assert_error(StatusCode::PRECONDITION_FAILED, "PRECONDITION_FAILED");
    let now = app.get(&path, Some(&ada.token)).await;
    assert_eq!(now.data(StatusCode::OK)["title"], json!("Ship it"));
    assert_eq!(now.data(StatusCode::OK)["version"], json!(2));

    let fresh = matching(&app, Method::PUT, &path, &ada, "\"2\"", Some(json!({"title": "Shipped"}))).await;
    assert_eq!(fresh.data(StatusCode::OK)["version"], json!(3));
    let any = matching(&app, Method::PATCH, &format!("{path}/complete"), &ada, "*", None).await;
    assert_eq!(any.data(StatusCode::OK)["completed"], json!(true));
    let gone = matching(&app, Method::DELETE, &path, &ada, "\"4\"", None).await;
    assert_eq!(gone.data(StatusCode::OK)["deleted"], json!(true));
}

#[tokio::test]
async fn revisions_record_who_changed_what_and_outlive_the_task() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, "Ship").await;
    let path = format!("/api/v1/tasks/{}", id(&task));
    app.put(&path, Some(&ada.token), json!({"title": "Ship it", "priority": "high"})).await.data(StatusCode::OK);
    app.patch(&format!("{path}/complete"), Some(&ada.token)).await.data(StatusCode::OK);
    app.delete(&path, Some(&ada.token)).await.data(StatusCode::OK);

    let history = revisions(&app, &ada, &id(&task)).await;
    let actions: Vec<&str> = history.iter().filter_map(|r| r["action"].as_str()).collect();
    assert_eq!(actions, ["deleted", "completed", "updated", "created"], "newest first");
    let versions: Vec<i64> = history.iter().filter_map(|r| r["version"].as_i64()).collect();
    assert_eq!(versions, [4, 3, 2, 1]);
    let updated = &history[2];
    assert_eq!(updated["changes"]["title"], json!(["Ship", "Ship it"]));
    assert_eq!(updated["changes"]["priority"], json!(["medium", "high"]));
    assert!(updated["changes"].get("description").is_none(), "only changed fields: {updated}");
    assert_eq!(updated["actor"], json!({"kind": "user", "user_id": ada.id}));
    assert_eq!(updated["origin"], json!("rest"));
    assert_eq!((&updated["conversation_id"], &updated["tool_call_id"]), (&Value::Null, &Value::Null));
    assert_eq!(history[1]["changes"]["completed"], json!([false, true]));

    let grace = app.register("Grace").await;
    let foreign = app.get(&format!("{path}/revisions"), Some(&grace.token)).await;
    foreign.assert_error(StatusCode::FORBIDDEN, "FORBIDDEN");
    let unknown = app.get(&format!("/api/v1/tasks/{}/revisions", uuid::Uuid::now_v7()), Some(&ada.token)).await;
    unknown.assert_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
}

/// The id of the tool call named `name` in an assistant reply.
fn call_of(reply: &Value, name: &str) -> Value {
    reply["message"]["tool_calls"]
        .as_array()
        .and_then(|calls| calls.iter().find(|c| c["function"]["name"] == json!(name)).cloned())
        .unwrap_or_else(|| panic!("no {name} call in {reply}"))
}

#[tokio::test]
async fn an_assistant_change_is_attributed_and_reverted_once() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let reply = chat(&app, &ada, "add a task called Water the plants").await;
    let call = call_of(&reply, "add_task");
    assert_eq!(call["revertible"], json!(true));
    let task = call["result"]["task"].clone();
    assert_eq!(task["version"], json!(1), "tool results carry the version");

    let history = revisions(&app, &ada, &id(&task)).await;
    assert_eq!(history[0]["actor"]["kind"], json!("assistant"));
    assert_eq!(history[0]["origin"], json!("chat"));
    assert_eq!(history[0]["conversation_id"], reply["conversation_id"]);
    assert_eq!(history[0]["tool_call_id"], call["id"]);

    let revert = format!("/api/v1/tool-calls/{}/revert", id(&call));
    let undone = app.post(&revert, Some(&ada.token), json!({})).await;
    assert_eq!(undone.data(StatusCode::OK), &json!({"tool_call_id": call["id"], "reverted": [task["id"]]}));
    let gone = app.get(&format!("/api/v1/tasks/{}", id(&task)), Some(&ada.token)).await;
    gone.assert_error(StatusCode::NOT_FOUND, "TASK_NOT_FOUND");
    let history = revisions(&app, &ada, &id(&task)).await;
    assert_eq!((&history[0]["action"], &history[0]["actor"]["kind"]), (&json!("deleted"), &json!("user")));

    app.post(&revert, Some(&ada.token), json!({})).await.assert_error(StatusCode::CONFLICT, "ALREADY_REVERTED");
    let conversation = format!("/api/v1/chat/conversations/{}", reply["conversation_id"].as_str().unwrap_or_default());
    let stored = app.get(&conversation, Some(&ada.token)).await;
    let calls = &stored.data(StatusCode::OK)["messages"][1]["tool_calls"];
    assert_eq!(calls[0]["revertible"], json!(false), "{calls}");
}

#[tokio::test]
async fn reverting_restores_an_update_and_refuses_after_a_later_change() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, "Water the plants").await;
    let path = format!("/api/v1/tasks/{}", id(&task));
    let renamed = chat(&app, &ada, &format!("rename task {} to Water the garden", id(&task))).await;
    let rename = call_of(&renamed, "update_task");
    let completed = chat(&app, &ada, "complete Water the garden").await;
    let complete = call_of(&completed, "complete_task");

    // The rename is followed by the completion: undoing it would lose that.
    let conflict = app.post(&format!("/api/v1/tool-calls/{}/revert", id(&rename)), Some(&ada.token), json!({})).await;
    conflict.assert_error(StatusCode::CONFLICT, "REVERT_CONFLICT");
    assert_eq!(conflict.body["error"]["details"]["task_ids"], json!([task["id"]]));
    assert_eq!(app.get(&path, Some(&ada.token)).await.data(StatusCode::OK)["completed"], json!(true));

    let undone = app.post(&format!("/api/v1/tool-calls/{}/revert", id(&complete)), Some(&ada.token), json!({})).await;
    undone.data(StatusCode::OK);
    let now = app.get(&path, Some(&ada.token)).await;
    let now = now.data(StatusCode::OK);
    assert_eq!((&now["completed"], &now["title"]), (&json!(false), &json!("Water the garden")));
    // The undo is itself a later change of the task: the rename stays as it is.
    let again = app.post(&format!("/api/v1/tool-calls/{}/revert", id(&rename)), Some(&ada.token), json!({})).await;
    again.assert_error(StatusCode::CONFLICT, "REVERT_CONFLICT");
    let now = app.get(&path, Some(&ada.token)).await;
    assert_eq!(now.data(StatusCode::OK)["title"], json!("Water the garden"));
    assert_eq!(now.data(StatusCode::OK)["version"], json!(4));

    let grace = app.register("Grace").await;
    let foreign = app.post(&format!("/api/v1/tool-calls/{}/revert", id(&rename)), Some(&grace.token), json!({})).await;
    foreign.assert_error(StatusCode::NOT_FOUND, "TOOL_CALL_NOT_FOUND");
}

/// Scripts `server`: its next answer is one `update_task` call with `arguments`, then text.
async fn script_update(server: &wiremock::MockServer, arguments: &str) {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};

    server.reset().await;
    let first = sse(&[tool_call_chunk("call_a", "update_task", arguments)]);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(first, "text/event-stream"))
        .up_to_n_times(1)
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(sse(&[text_chunk("Done.")]), "text/event-stream"))
        .mount(server)
        .await;
}

#[tokio::test]
async fn a_stale_version_from_the_model_keeps_the_users_newer_edit() {
    let provider = wiremock::MockServer::start().await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &base)]).await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, "Water the plants").await;
    let path = format!("/api/v1/tasks/{}", id(&task));
    app.put(&path, Some(&ada.token), json!({"title": "Water the roses"})).await.data(StatusCode::OK);

    // The model read version 1, before the user's edit made it 2.
    script_update(&provider, &json!({"task_id": id(&task), "title": "Water the lawn", "version": 1}).to_string()).await;
    let reply = chat(&app, &ada, "rename it to Water the lawn").await;
    let call = call_of(&reply, "update_task");
    assert_eq!(call["status"], json!("error"), "{call}");
    assert_eq!(call["result"]["error"], json!("conflict"));
    assert_eq!(call["result"]["current"]["title"], json!("Water the roses"));
    assert_eq!(call["result"]["current"]["version"], json!(2));
    assert_eq!(call["revertible"], json!(false));
    assert_eq!(app.get(&path, Some(&ada.token)).await.data(StatusCode::OK)["title"], json!("Water the roses"));

    // With the current version the same call applies.
    script_update(&provider, &json!({"task_id": id(&task), "title": "Water the lawn", "version": 2}).to_string()).await;
    let reply = chat(&app, &ada, "rename it to Water the lawn").await;
    assert_eq!(call_of(&reply, "update_task")["status"], json!("ok"));
    assert_eq!(app.get(&path, Some(&ada.token)).await.data(StatusCode::OK)["title"], json!("Water the lawn"));
}
