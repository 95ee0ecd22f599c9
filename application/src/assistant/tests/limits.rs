//! The bounds of one reply: tool-call budget, text and argument caps, the
//! deadline and the stop signal. Whatever was produced is stored.

use std::time::Duration;

use futures_util::stream;
use parley_conversations::{MockLanguageModel, ModelEvent, ToolStatus};
use parley_tasks::MockTaskRepository;

use super::*;

fn add(id: &str) -> ModelEvent {
    ModelEvent::ToolCall(ToolRequest { id: id.into(), name: "add_task".into(), arguments: r#"{"title":"T"}"#.into() })
}

fn stored_replies(stored: &Arc<Mutex<Vec<Message>>>) -> Vec<Message> {
    stored.lock().map(|m| m.iter().filter(|m| m.role == Role::Assistant).cloned().collect()).unwrap_or_default()
}

/// Runs a reply bounded by `limits`; the test fails instead of hanging if it never ends.
async fn run(service: &AssistantService) -> (Result<Message, AssistantError>, Vec<AssistantEvent>) {
    let mut events = Vec::new();
    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        service.reply(UserId::new(), ConversationId::new(), Origin::Chat, &mut |e| events.push(e)),
    )
    .await
    .unwrap_or_else(|_| panic!("the reply never ended"));
    (outcome, events)
}

fn error_code(call: &ToolCall) -> Option<Value> {
    call.result.as_ref().map(|r| r["error"]["code"].clone())
}

use serde_json::Value;

#[tokio::test]
async fn calls_past_the_budget_are_error_results_and_do_not_run() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    let mut round = 0;
    model.expect_stream().times(2).returning(move |history, _| {
        round += 1;
        Ok(if round == 1 {
            turn(vec![add("a"), add("b"), add("c")])
        } else {
            assert!(
                matches!(history.last(), Some(ChatTurn::Tool { content, .. }) if content.contains("TOOL_CALL_LIMIT"))
            );
            turn(vec![ModelEvent::TextDelta("Added two of them.".into())])
        })
    });
    let mut tasks = MockTaskRepository::new();
    tasks.expect_create().times(2).returning(|_, _| Ok(()));
    let limits = ReplyLimits { max_tool_calls: 2, ..ReplyLimits::default() };
    let service = limited(model, tasks, conversations(UserId::new(), stored.clone()), limits);

    let (outcome, _) = run(&service).await;

    let reply = outcome.unwrap_or_else(|e| panic!("{e}"));
    let statuses: Vec<ToolStatus> = reply.tool_calls.iter().map(|c| c.status).collect();
    assert_eq!(statuses, vec![ToolStatus::Ok, ToolStatus::Ok, ToolStatus::Error]);
    assert_eq!(error_code(&reply.tool_calls[2]), Some(serde_json::json!("TOOL_CALL_LIMIT")));
    assert_eq!(stored_replies(&stored), vec![reply]);
}

#[tokio::test]
async fn a_model_that_keeps_calling_after_the_budget_ends_the_reply_and_it_is_stored() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    let mut round = 0;
    model.expect_stream().times(2).returning(move |_, _| {
        round += 1;
        Ok(turn(if round == 1 { vec![add("a"), add("b")] } else { vec![add("c")] }))
    });
    let mut tasks = MockTaskRepository::new();
    tasks.expect_create().times(1).returning(|_, _| Ok(()));
    let limits = ReplyLimits { max_tool_calls: 1, ..ReplyLimits::default() };
    let service = limited(model, tasks, conversations(UserId::new(), stored.clone()), limits);

    let (outcome, _) = run(&service).await;

    assert!(matches!(outcome, Err(AssistantError::Cut(ReplyCut::ToolCalls))), "{outcome:?}");
    let replies = stored_replies(&stored);
    assert_eq!(replies.len(), 1);
    let ids: std::collections::HashSet<&str> = replies[0].tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!((replies[0].tool_calls.len(), ids.len()), (3, 3), "three calls, each with its own id");
    assert_eq!(error_code(&replies[0].tool_calls[2]), Some(serde_json::json!("TOOL_CALL_LIMIT")));
}

#[tokio::test]
async fn text_past_the_cap_is_cut_there_and_the_reply_ends() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    model.expect_stream().times(1).returning(|_, _| {
        // Endless text: only the cap can end this turn.
        Ok(Box::pin(stream::repeat_with(|| Ok(ModelEvent::TextDelta("héllo ".into())))))
    });
    let limits = ReplyLimits { max_reply_chars: 10, ..ReplyLimits::default() };
    let service = limited(model, MockTaskRepository::new(), conversations(UserId::new(), stored.clone()), limits);

    let (outcome, events) = run(&service).await;

    assert!(matches!(outcome, Err(AssistantError::Cut(ReplyCut::Length))), "{outcome:?}");
    assert_eq!(events.last(), Some(&AssistantEvent::Delta("héll".into())));
    let replies = stored_replies(&stored);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].content, "héllo héll");
}

#[tokio::test]
async fn arguments_past_the_cap_are_not_run_and_end_the_reply() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    model.expect_stream().times(1).returning(|_, _| {
        let arguments = format!(r#"{{"title":"{}"}}"#, "x".repeat(5000));
        Ok(turn(vec![ModelEvent::ToolCall(ToolRequest { id: "big".into(), name: "add_task".into(), arguments })]))
    });
    // No expectation on the task repository: running the tool would panic.
    let service =
        limited(model, MockTaskRepository::new(), conversations(UserId::new(), stored.clone()), ReplyLimits::default());

    let (outcome, _) = run(&service).await;

    assert!(matches!(outcome, Err(AssistantError::Cut(ReplyCut::Arguments))), "{outcome:?}");
    let replies = stored_replies(&stored);
    assert_eq!(replies[0].tool_calls.len(), 1);
    let call = &replies[0].tool_calls[0];
    assert_eq!(call.status, ToolStatus::Error);
    assert_eq!(error_code(call), Some(serde_json::json!("ARGUMENTS_TOO_LONG")));
    assert_eq!(call.arguments.len(), ReplyLimits::ARGUMENT_BYTES);
}

/// One delta, then a provider that never says anything again.
fn one_delta_then_silence() -> ModelStream {
    Box::pin(stream::iter([Ok(ModelEvent::TextDelta("partial".into()))]).chain(stream::pending()))
}

#[tokio::test]
async fn the_deadline_ends_a_reply_that_never_finishes_and_keeps_its_text() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    model.expect_stream().times(1).returning(|_, _| Ok(one_delta_then_silence()));
    let limits = ReplyLimits { reply_timeout: Duration::from_millis(50), ..ReplyLimits::default() };
    let service = limited(model, MockTaskRepository::new(), conversations(UserId::new(), stored.clone()), limits);

    let (outcome, _) = run(&service).await;

    assert!(matches!(outcome, Err(AssistantError::Cut(ReplyCut::Deadline))), "{outcome:?}");
    assert_eq!(stored_replies(&stored).iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["partial"]);
}

#[tokio::test]
async fn the_stop_signal_ends_the_reply_and_keeps_what_it_produced() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    model.expect_stream().times(1).returning(|_, _| Ok(one_delta_then_silence()));
    let service =
        limited(model, MockTaskRepository::new(), conversations(UserId::new(), stored.clone()), ReplyLimits::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut stop = Some(stop);

    let outcome = tokio::time::timeout(
        Duration::from_secs(10),
        service.reply_until(
            UserId::new(),
            ConversationId::new(),
            Origin::Chat,
            &mut |_| {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            },
            Box::pin(async move {
                let _ = stopped.await;
            }),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("the reply never ended"));

    assert!(matches!(outcome, Err(AssistantError::Cut(ReplyCut::Stopped))), "{outcome:?}");
    assert_eq!(stored_replies(&stored).iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["partial"]);
}

#[tokio::test]
async fn a_model_failure_after_some_text_stores_that_text() {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    model.expect_stream().times(1).returning(|_, _| {
        Ok(Box::pin(stream::iter([
            Ok(ModelEvent::TextDelta("Half a ".into())),
            Err(ModelError::Unavailable("connection lost".into())),
        ])))
    });
    let service =
        limited(model, MockTaskRepository::new(), conversations(UserId::new(), stored.clone()), ReplyLimits::default());

    let (outcome, _) = run(&service).await;

    assert!(matches!(outcome, Err(AssistantError::Model(ModelError::Unavailable(_)))), "{outcome:?}");
    assert_eq!(stored_replies(&stored).iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), vec!["Half a "]);
}

#[tokio::test]
async fn arguments_that_are_not_json_are_an_error_result_and_do_not_run() {
    let mut model = MockLanguageModel::new();
    let mut round = 0;
    model.expect_stream().times(2).returning(move |_, _| {
        round += 1;
        Ok(turn(if round == 1 {
            vec![ModelEvent::ToolCall(ToolRequest {
                id: "bad".into(),
                name: "add_task".into(),
                arguments: r#"{"title": "Buy"#.into(),
            })]
        } else {
            vec![ModelEvent::TextDelta("Sorry.".into())]
        }))
    });
    let service =
        limited(model, MockTaskRepository::new(), conversations(UserId::new(), Arc::default()), ReplyLimits::default());

    let (outcome, _) = run(&service).await;

    let reply = outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.tool_calls[0].status, ToolStatus::Error);
    assert_eq!(error_code(&reply.tool_calls[0]), Some(serde_json::json!("INVALID_ARGUMENTS")));
}

fn stored(role: Role, content: &str, tool_calls: Vec<ToolCall>) -> Message {
    Message { id: MessageId::new(), role, content: content.into(), tool_calls, created_at: chrono::Utc::now() }
}

#[test]
fn the_context_keeps_the_newest_messages_that_fit_with_their_tool_results_and_says_so() {
    let call = ToolCall {
        id: "c1".into(),
        name: "list_tasks".into(),
        arguments: "{}".into(),
        result: Some(serde_json::json!({"tasks": []})),
        status: ToolStatus::Ok,
    };
    let messages = vec![
        stored(Role::User, &"old ".repeat(500), vec![]),
        stored(Role::Assistant, &"older reply ".repeat(200), vec![]),
        stored(Role::User, "list my tasks", vec![]),
        stored(Role::Assistant, "You have none.", vec![call]),
        stored(Role::User, "thanks", vec![]),
    ];

    let history = super::super::context(messages.clone(), false, 1000);

    assert!(matches!(&history[0], ChatTurn::System(prompt) if prompt.contains("left out")), "{history:?}");
    assert_eq!(history[1], ChatTurn::User("list my tasks".into()));
    assert!(matches!(&history[2], ChatTurn::Assistant { tool_calls, .. } if tool_calls[0].id == "c1"));
    assert!(matches!(&history[3], ChatTurn::Tool { call_id, .. } if call_id == "c1"));
    assert_eq!(history.last(), Some(&ChatTurn::User("thanks".into())));

    let everything = super::super::context(messages.clone(), false, 100_000);
    assert!(matches!(&everything[0], ChatTurn::System(prompt) if !prompt.contains("left out")));
    assert_eq!(everything[1], ChatTurn::User("old ".repeat(500)));

    let unread_before = super::super::context(messages.clone(), true, 100_000);
    assert!(matches!(&unread_before[0], ChatTurn::System(prompt) if prompt.contains("left out")));
    assert_eq!(unread_before.len(), everything.len());
}

#[test]
fn a_message_takes_the_context_its_turns_take() {
    let call = ToolCall {
        id: "c1".into(),
        name: "list_tasks".into(),
        arguments: r#"{"q":"é"}"#.into(),
        result: Some(serde_json::json!({"tasks": ["ü"]})),
        status: ToolStatus::Ok,
    };
    let message = stored(Role::Assistant, "Voilà", vec![call]);
    let mut pushed = Vec::new();
    super::super::push_turns(&mut pushed, message.clone());
    let turns: usize = pushed
        .iter()
        .map(|turn| match turn {
            ChatTurn::System(text) | ChatTurn::User(text) | ChatTurn::Tool { content: text, .. } => {
                text.chars().count()
            }
            ChatTurn::Assistant { content, tool_calls } => {
                content.chars().count()
                    + tool_calls.iter().map(|c| c.name.chars().count() + c.arguments.chars().count()).sum::<usize>()
            }
        })
        .sum();
    assert_eq!(message.context_chars(), turns);
    assert_eq!(message.context_chars(), 5 + 10 + 9 + 15);
}
