//! `OfflineAssistant`: a rule-based stand-in for a language model, used when
//! no provider is configured.
//!
//! It answers through the same tool path as a real model: it reads the
//! history, asks for tool calls (`add_task`, `list_tasks`, `complete_task`,
//! `update_task`, `delete_task`) and, once their results are in the history,
//! summarises them in plain text.

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt};
use parley_conversations::{ChatTurn, LanguageModel, ModelError, ModelEvent, ModelStream, ToolRequest, ToolSpec};
use serde_json::Value;
use uuid::Uuid;

use replies::{Reply, respond};

mod grammar;
mod replies;

/// A [`LanguageModel`] that understands a small command grammar and manages
/// tasks through the same tools a real model would call.
///
/// It only calls tools that are offered in the turn's `tools`; when the tool it
/// needs is not offered it answers with text instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineAssistant;

impl OfflineAssistant {
    /// Creates the offline assistant.
    #[must_use]
    pub const fn new() -> Self {
        Self
    }
}

#[async_trait]
impl LanguageModel for OfflineAssistant {
    async fn stream(&self, history: &[ChatTurn], tools: Vec<ToolSpec>) -> Result<ModelStream, ModelError> {
        let offered: Vec<&str> = tools.iter().map(|tool| tool.name).collect();
        let events = match respond(history) {
            Reply::Call(tool, arguments) if offered.contains(&tool.name()) => {
                vec![tool_call(tool.name(), &arguments)]
            }
            Reply::Call(..) => text_events("Sorry, I can't manage your tasks right now."),
            Reply::Text(text) => text_events(&text),
        };
        Ok(stream::iter(events.into_iter().map(Ok)).boxed())
    }
}

fn tool_call(name: &str, arguments: &Value) -> ModelEvent {
    ModelEvent::ToolCall(ToolRequest {
        id: format!("call_{}", Uuid::new_v4().simple()),
        name: name.to_owned(),
        arguments: arguments.to_string(),
    })
}

/// The text as several deltas, one word (with its trailing space) each.
pub(crate) fn text_events(text: &str) -> Vec<ModelEvent> {
    text.split_inclusive(' ').map(|word| ModelEvent::TextDelta(word.to_owned())).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use parley_application::tools::{TaskTool, TaskView};
    use serde_json::json;

    use super::*;

    #[test]
    fn text_events_split_into_words_that_join_back() {
        let events = text_events("Added \"Buy milk\" to your tasks.");
        assert_eq!(events.len(), 6);
        let joined: String = events
            .iter()
            .map(|event| match event {
                ModelEvent::TextDelta(text) => text.as_str(),
                ModelEvent::ToolCall(_) => "",
            })
            .collect();
        assert_eq!(joined, "Added \"Buy milk\" to your tasks.");
    }

    // -- multi-turn flow ----------------------------------------------------

    fn tools() -> Vec<ToolSpec> {
        TaskTool::ALL
            .into_iter()
            .map(|tool| ToolSpec { name: tool.name(), description: "", parameters: json!({"type": "object"}) })
            .collect()
    }

    async fn run(history: &[ChatTurn]) -> Vec<ModelEvent> {
        let stream = OfflineAssistant::new().stream(history, tools()).await.unwrap();
        stream.map(|event| event.unwrap()).collect().await
    }

    /// The single tool call of a turn, with its arguments parsed.
    async fn expect_call(history: &[ChatTurn]) -> (ToolRequest, Value) {
        let events = run(history).await;
        match events.as_slice() {
            [ModelEvent::ToolCall(call)] => {
                assert!(call.id.starts_with("call_") && call.id.len() == 37, "bad id {}", call.id);
                (call.clone(), serde_json::from_str(&call.arguments).unwrap())
            }
            other => panic!("expected one tool call, got {other:?}"),
        }
    }

    async fn expect_text(history: &[ChatTurn]) -> String {
        let events = run(history).await;
        assert!(!events.is_empty());
        events
            .into_iter()
            .map(|event| match event {
                ModelEvent::TextDelta(text) => text,
                ModelEvent::ToolCall(call) => panic!("unexpected tool call {call:?}"),
            })
            .collect()
    }

    fn task(id: &str, title: &str, completed: bool) -> Value {
        let at = "2026-01-01T00:00:00.000000Z".to_owned();
        serde_json::to_value(TaskView {
            id: id.to_owned(),
            title: title.to_owned(),
            description: String::new(),
            completed,
            priority: "medium".to_owned(),
            due_at: None,
            created_at: at.clone(),
            updated_at: at.clone(),
            completed_at: completed.then_some(at),
            version: 1,
        })
        .unwrap()
    }

    /// Appends the assistant's tool call and the tool's result.
    fn answered(mut history: Vec<ChatTurn>, call: ToolRequest, result: &Value) -> Vec<ChatTurn> {
        let call_id = call.id.clone();
        history.push(ChatTurn::Assistant { content: String::new(), tool_calls: vec![call] });
        history.push(ChatTurn::Tool { call_id, content: result.to_string() });
        history
    }

    const MILK: &str = "0190a5c4-7b1e-7c3a-9d2e-000000000001";
    const DOG: &str = "0190a5c4-7b1e-7c3a-9d2e-000000000002";

    fn two_tasks() -> Value {
        json!({"tasks": [task(MILK, "Buy milk", false), task(DOG, "Walk the dog", true)], "count": 2})
    }

    #[tokio::test]
    async fn add_then_summary() {
        let history = vec![ChatTurn::System("sys".into()), ChatTurn::User("Add a task to Buy milk".into())];
        let (call, args) = expect_call(&history).await;
        assert_eq!(call.name, TaskTool::AddTask.name());
        assert_eq!(args, json!({"title": "Buy milk"}));
        let history = answered(history, call, &json!({"task": task(MILK, "Buy milk", false)}));
        let events = run(&history).await;
        assert!(events.len() > 1, "text must arrive in several deltas");
        assert_eq!(expect_text(&history).await, "Added \"Buy milk\" to your tasks.");
    }

    #[tokio::test]
    async fn list_pending_then_summary() {
        let history = vec![ChatTurn::User("show my pending tasks".into())];
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (TaskTool::ListTasks.name(), json!({"status": "pending"})));
        let result = json!({"tasks": [task(MILK, "Buy milk", false), task(DOG, "Walk the dog", false)], "count": 2});
        let history = answered(history, call, &result);
        assert_eq!(expect_text(&history).await, "You have 2 pending tasks: 1. Buy milk 2. Walk the dog");
    }

    #[tokio::test]
    async fn list_all_marks_done_tasks_and_handles_empty_lists() {
        let history = vec![ChatTurn::User("list tasks".into())];
        let (call, args) = expect_call(&history).await;
        assert_eq!(args, json!({"status": "all"}));
        let text = expect_text(&answered(history.clone(), call.clone(), &two_tasks())).await;
        assert_eq!(text, "You have 2 tasks: 1. Buy milk 2. Walk the dog (done)");
        let text = expect_text(&answered(history, call, &json!({"tasks": [], "count": 0}))).await;
        assert_eq!(text, "You have no tasks.");
    }

    #[tokio::test]
    async fn complete_by_title_looks_up_then_acts_then_summarises() {
        let history = vec![ChatTurn::User("mark done BUY MILK".into())];
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (TaskTool::ListTasks.name(), json!({"status": "all"})));
        let history = answered(history, call, &two_tasks());
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (TaskTool::CompleteTask.name(), json!({"task_id": MILK})));
        let history = answered(history, call, &json!({"task": task(MILK, "Buy milk", true)}));
        assert_eq!(expect_text(&history).await, "Marked \"Buy milk\" as done.");
    }

    #[tokio::test]
    async fn substring_match_is_used_when_unique() {
        let history = answered(
            vec![ChatTurn::User("delete dog".into())],
            ToolRequest {
                id: "call_x".into(),
                name: TaskTool::ListTasks.name().into(),
                arguments: "{\"status\":\"all\"}".into(),
            },
            &two_tasks(),
        );
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (TaskTool::DeleteTask.name(), json!({"task_id": DOG})));
        let history = answered(history, call, &json!({"deleted": true, "id": DOG}));
        assert_eq!(expect_text(&history).await, "Deleted \"Walk the dog\".");
    }

    #[tokio::test]
    async fn ambiguous_substring_asks_which_one() {
        let list = json!({"tasks": [task(MILK, "Buy milk", false), task(DOG, "Buy bread", false)], "count": 2});
        let history = answered(
            vec![ChatTurn::User("complete buy".into())],
            ToolRequest { id: "call_x".into(), name: TaskTool::ListTasks.name().into(), arguments: "{}".into() },
            &list,
        );
        let text = expect_text(&history).await;
        assert!(text.contains("Several tasks match \"buy\""), "{text}");
    }

    #[tokio::test]
    async fn unknown_title_says_not_found() {
        let history = answered(
            vec![ChatTurn::User("remove task \"Feed the cat\"".into())],
            ToolRequest {
                id: "call_x".into(),
                name: TaskTool::ListTasks.name().into(),
                arguments: "{\"status\":\"all\"}".into(),
            },
            &two_tasks(),
        );
        assert_eq!(expect_text(&history).await, "I couldn't find a task called \"Feed the cat\".");
    }

    #[tokio::test]
    async fn rename_by_title_and_by_id() {
        let history = vec![ChatTurn::User("rename buy milk to Buy oat milk".into())];
        let (call, _) = expect_call(&history).await;
        let history = answered(history, call, &two_tasks());
        let (call, args) = expect_call(&history).await;
        assert_eq!(
            (call.name.as_str(), args),
            (TaskTool::UpdateTask.name(), json!({"task_id": MILK, "title": "Buy oat milk"}))
        );
        let history = answered(history, call, &json!({"task": task(MILK, "Buy oat milk", false)}));
        assert_eq!(expect_text(&history).await, "Renamed \"Buy milk\" to \"Buy oat milk\".");

        let history = vec![ChatTurn::User(format!("update task {DOG} to Walk the cat"))];
        let (call, args) = expect_call(&history).await;
        assert_eq!(
            (call.name.as_str(), args),
            (TaskTool::UpdateTask.name(), json!({"task_id": DOG, "title": "Walk the cat"}))
        );
    }

    #[tokio::test]
    async fn id_targets_skip_the_lookup() {
        let (call, args) = expect_call(&[ChatTurn::User(format!("complete {MILK}"))]).await;
        assert_eq!((call.name.as_str(), args), (TaskTool::CompleteTask.name(), json!({"task_id": MILK})));
        let history = vec![ChatTurn::User(format!("delete {DOG}"))];
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (TaskTool::DeleteTask.name(), json!({"task_id": DOG})));
        let history = answered(history, call, &json!({"deleted": true, "id": DOG}));
        assert_eq!(expect_text(&history).await, "Deleted the task.");
    }

    #[tokio::test]
    async fn tool_errors_are_explained() {
        let history = answered(
            vec![ChatTurn::User(format!("complete {MILK}"))],
            ToolRequest {
                id: "call_x".into(),
                name: TaskTool::CompleteTask.name().into(),
                arguments: format!("{{\"task_id\":\"{MILK}\"}}"),
            },
            &json!({"error": {"code": "TASK_NOT_FOUND", "message": "Task not found"}}),
        );
        assert_eq!(expect_text(&history).await, "I couldn't find that task: Task not found");
        let history = answered(
            vec![ChatTurn::User("add x".into())],
            ToolRequest { id: "call_y".into(), name: TaskTool::AddTask.name().into(), arguments: "{}".into() },
            &json!({"error": {"code": "INVALID_ARGUMENTS", "message": "title must not be empty"}}),
        );
        assert!(expect_text(&history).await.contains("title must not be empty"));
    }

    #[tokio::test]
    async fn earlier_exchanges_do_not_confuse_the_next_one() {
        // A finished exchange, then a new user message: a fresh first step.
        let first = answered(
            vec![ChatTurn::User("add Buy milk".into())],
            ToolRequest { id: "call_a".into(), name: TaskTool::AddTask.name().into(), arguments: "{}".into() },
            &json!({"task": task(MILK, "Buy milk", false)}),
        );
        let mut history = first;
        history.push(ChatTurn::Assistant { content: "Added \"Buy milk\" to your tasks.".into(), tool_calls: vec![] });
        history.push(ChatTurn::User("list completed tasks".into()));
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (TaskTool::ListTasks.name(), json!({"status": "completed"})));
    }

    #[tokio::test]
    async fn unrecognised_input_gets_help_and_missing_tools_get_text() {
        let text = expect_text(&[ChatTurn::User("what's the weather like?".into())]).await;
        assert!(text.contains("add a task") && text.contains("rename"), "{text}");

        let events: Vec<_> = OfflineAssistant::new()
            .stream(&[ChatTurn::User("add Buy milk".into())], vec![])
            .await
            .unwrap()
            .collect()
            .await;
        assert!(events.iter().all(|event| matches!(event, Ok(ModelEvent::TextDelta(_)))), "{events:?}");
    }
}
