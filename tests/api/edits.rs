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

async fn tasks(app: &TestApp, user: &TestUser) -> Vec<Value> {
    app.get("/api/v1/tasks", Some(&user.token)).await.data(StatusCode::OK).as_array().cloned().unwrap_or_default()
}

fn plan_path(reply: &Value, verb: &str) -> String {
    let plan = reply["plan"]["id"].as_str().unwrap_or_else(|| panic!("no plan in {reply}"));
    format!("/api/v1/plans/{plan}/{verb}")
}

#[tokio::test]
async fn a_deletion_waits_for_approval_and_is_applied_once() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, "Buy milk").await;
    let reply = chat(&app, &ada, "delete Buy milk").await;
    let call = call_of(&reply, "delete_task");
    assert_eq!(call["result"]["status"], json!("pending_approval"));
    assert_eq!(call["result"]["plan_id"], reply["plan"]["id"]);
    assert_eq!(call["revertible"], json!(false));
    let change = &reply["plan"]["changes"][0];
    assert_eq!((&change["tool_call_id"], &change["name"]), (&call["id"], &json!("delete_task")));
    assert_eq!((&change["task_before"]["id"], &change["task_after"]), (&task["id"], &Value::Null));
    assert!(reply["plan"]["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(reply["message"]["content"].as_str().is_some_and(|c| c.contains("approval")), "{reply}");
    assert_eq!(tasks(&app, &ada).await.len(), 1, "nothing is deleted before approval");

    let grace = app.register("Grace").await;
    let foreign = app.post(&plan_path(&reply, "approve"), Some(&grace.token), json!({})).await;
    foreign.assert_error(StatusCode::NOT_FOUND, "PLAN_NOT_FOUND");
    let approved = app.post(&plan_path(&reply, "approve"), Some(&ada.token), json!({})).await;
    let approved = approved.data(StatusCode::OK);
    assert_eq!(approved, &json!({"id": reply["plan"]["id"], "status": "approved", "applied": [task["id"]]}));
    assert!(tasks(&app, &ada).await.is_empty());
    let again = app.post(&plan_path(&reply, "approve"), Some(&ada.token), json!({})).await;
    again.assert_error(StatusCode::CONFLICT, "PLAN_DECIDED");

    // The deletion is the assistant's, under its tool call: it can be undone.
    let history = revisions(&app, &ada, &id(&task)).await;
    assert_eq!((&history[0]["action"], &history[0]["actor"]["kind"]), (&json!("deleted"), &json!("assistant")));
    assert_eq!(history[0]["tool_call_id"], call["id"]);
    let revert = format!("/api/v1/tool-calls/{}/revert", id(&call));
    app.post(&revert, Some(&ada.token), json!({})).await.data(StatusCode::OK);
    let restored = app.get(&format!("/api/v1/tasks/{}", id(&task)), Some(&ada.token)).await;
    assert_eq!(restored.data(StatusCode::OK)["title"], json!("Buy milk"));

    // The outcome is in the conversation, for the model's next turn.
    let conversation = format!("/api/v1/chat/conversations/{}", reply["conversation_id"].as_str().unwrap_or_default());
    let stored = app.get(&conversation, Some(&ada.token)).await;
    let messages = stored.data(StatusCode::OK)["messages"].as_array().cloned().unwrap_or_default();
    let last = messages.last().cloned().unwrap_or_default();
    assert!(last["content"].as_str().is_some_and(|c| c.starts_with("Approved")), "{last}");
}

#[tokio::test]
async fn a_rejected_plan_changes_nothing_and_cannot_be_approved() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    create(&app, &ada, "Buy milk").await;
    let reply = chat(&app, &ada, "delete Buy milk").await;
    let rejected = app.post(&plan_path(&reply, "reject"), Some(&ada.token), json!({})).await;
    assert_eq!(rejected.data(StatusCode::OK), &json!({"id": reply["plan"]["id"], "status": "rejected"}));
    assert_eq!(tasks(&app, &ada).await.len(), 1);
    let late = app.post(&plan_path(&reply, "approve"), Some(&ada.token), json!({})).await;
    late.assert_error(StatusCode::CONFLICT, "PLAN_DECIDED");
    let unknown = app.post("/api/v1/plans/not-a-uuid/approve", Some(&ada.token), json!({})).await;
    unknown.assert_error(StatusCode::NOT_FOUND, "PLAN_NOT_FOUND");
}

#[tokio::test]
async fn a_plan_over_a_task_changed_since_is_a_conflict_and_applies_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    let task = create(&app, &ada, "Buy milk").await;
    let reply = chat(&app, &ada, "delete Buy milk").await;
    let path = format!("/api/v1/tasks/{}", id(&task));
    app.put(&path, Some(&ada.token), json!({"title": "Buy oat milk"})).await.data(StatusCode::OK);
    let conflict = app.post(&plan_path(&reply, "approve"), Some(&ada.token), json!({})).await;
    conflict.assert_error(StatusCode::CONFLICT, "PLAN_CONFLICT");
    assert_eq!(conflict.body["error"]["details"]["task_ids"], json!([task["id"]]));
    assert_eq!(app.get(&path, Some(&ada.token)).await.data(StatusCode::OK)["title"], json!("Buy oat milk"));
}

#[tokio::test]
async fn an_expired_plan_is_410() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    create(&app, &ada, "Buy milk").await;
    let reply = chat(&app, &ada, "delete Buy milk").await;
    let plan = reply["plan"]["id"].as_str().unwrap_or_default();
    let past = if app.is_postgres() { "now() - interval '1 minute'".to_owned() } else { "0".to_owned() };
    app.execute_sql(&format!("UPDATE plans SET expires_at = {past} WHERE id = '{plan}'")).await;
    let expired = app.post(&plan_path(&reply, "approve"), Some(&ada.token), json!({})).await;
    expired.assert_error(StatusCode::GONE, "PLAN_EXPIRED");
    assert_eq!(tasks(&app, &ada).await.len(), 1);
}

#[tokio::test]
async fn concurrent_approvals_apply_the_plan_once() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    create(&app, &ada, "Buy milk").await;
    let reply = chat(&app, &ada, "delete Buy milk").await;
    let path = plan_path(&reply, "approve");
    let answers = futures_util::future::join_all((0..6).map(|_| app.post(&path, Some(&ada.token), json!({})))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 5, "{statuses:?}");
    assert!(tasks(&app, &ada).await.is_empty());
}

#[tokio::test]
async fn with_approval_never_a_deletion_runs_at_once() {
    let app = TestApp::spawn_with(&[("ASSISTANT_APPROVAL", "never")]).await;
    let ada = app.register("Ada").await;
    create(&app, &ada, "Buy milk").await;
    let reply = chat(&app, &ada, "delete Buy milk").await;
    assert_eq!(reply["plan"], Value::Null);
    assert_eq!(call_of(&reply, "delete_task")["revertible"], json!(true));
    assert!(tasks(&app, &ada).await.is_empty());
}

#[tokio::test]
async fn with_approval_always_an_addition_waits_too() {
    let app = TestApp::spawn_with(&[("ASSISTANT_APPROVAL", "always")]).await;
    let ada = app.register("Ada").await;
    let reply = chat(&app, &ada, "add a task called Water the plants").await;
    let change = &reply["plan"]["changes"][0];
    assert_eq!((&change["task_before"], &change["task_after"]["title"]), (&Value::Null, &json!("Water the plants")));
    assert!(tasks(&app, &ada).await.is_empty());
    app.post(&plan_path(&reply, "approve"), Some(&ada.token), json!({})).await.data(StatusCode::OK);
    let now = tasks(&app, &ada).await;
    assert_eq!((now.len(), &now[0]["id"]), (1, &change["task_after"]["id"]));
}

#[tokio::test]
async fn a_reply_changing_more_than_three_tasks_holds_the_rest() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let provider = MockServer::start().await;
    let calls: Vec<Value> = (1..=5)
        .map(|n| {
            json!({"index": n - 1, "id": format!("call_{n}"), "type": "function",
                   "function": {"name": "add_task", "arguments": format!("{{\"title\":\"Task {n}\"}}")}})
        })
        .collect();
    let first = sse(&[json!({"choices": [{"index": 0, "delta": {"tool_calls": calls}}]})]);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(first, "text/event-stream"))
        .mount(&provider)
        .await;
    let base = format!("{}/v1", provider.uri());
    let app = TestApp::spawn_with(&[("LLM_BASE_URL", &base)]).await;
    let ada = app.register("Ada").await;
    let reply = chat(&app, &ada, "add five tasks").await;
    assert_eq!(tasks(&app, &ada).await.len(), 3, "three changes run at once");
    let held: Vec<&Value> = reply["plan"]["changes"].as_array().map(|c| c.iter().collect()).unwrap_or_default();
    assert_eq!(held.len(), 2, "{reply}");
    assert_eq!(provider.received_requests().await.map(|r| r.len()), Some(1), "the reply ends at the plan");
    app.post(&plan_path(&reply, "approve"), Some(&ada.token), json!({})).await.data(StatusCode::OK);
    assert_eq!(tasks(&app, &ada).await.len(), 5);
}

#[tokio::test]
async fn the_chatkit_stream_says_approval_required() {
    let app = TestApp::spawn().await;
    let ada = app.register("Ada").await;
    create(&app, &ada, "Buy milk").await;
    let session = crate::chatkit::session(&app, &ada).await;
    let events = crate::chatkit::stream(&app, &ada, &session, "delete Buy milk").await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let at = names.iter().position(|n| *n == "approval.required").unwrap_or_else(|| panic!("{names:?}"));
    assert!(names[at + 1..].contains(&"message.completed"), "{names:?}");
    let plan: Value = serde_json::from_str(&events[at].1).unwrap_or_default();
    assert_eq!(plan["plan"]["changes"][0]["name"], json!("delete_task"));
    let approve = format!("/api/v1/plans/{}/approve", plan["plan"]["id"].as_str().unwrap_or_default());
    app.post(&approve, Some(&ada.token), json!({})).await.data(StatusCode::OK);
    assert!(tasks(&app, &ada).await.is_empty());
}
