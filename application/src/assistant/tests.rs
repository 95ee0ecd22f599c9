//! The tool loop against mocked ports: no database, no network.

use std::sync::{Arc, Mutex};

use futures_util::stream;
use parley_conversations::{
    Conversation, ConversationDetail, ConversationTitle, MockConversationRepository, MockLanguageModel, ModelStream,
    ToolStatus,
};
use parley_kernel::{MockClock, SystemClock};
use parley_tasks::MockTaskRepository;

use super::*;

mod limits;

fn turn(events: Vec<ModelEvent>) -> ModelStream {
    Box::pin(stream::iter(events.into_iter().map(Ok)))
}

fn conversations(owner: UserId, stored: Arc<Mutex<Vec<Message>>>) -> MockConversationRepository {
    let mut repo = MockConversationRepository::new();
    let seen = stored.clone();
    repo.expect_history().returning(move |_, id, _, _| {
        let now = chrono::Utc::now();
        Ok(ConversationDetail {
            conversation: Conversation {
                id,
                owner,
                title: ConversationTitle::from_stored("t".into()),
                created_at: now,
                updated_at: now,
            },
            messages: seen.lock().map(|m| m.clone()).unwrap_or_default(),
            has_more_messages: false,
        })
    });
    repo.expect_append().returning(move |_, _, message| {
        stored.lock().map(|mut m| m.push(message.clone())).map_err(|_| ConversationError::NotFound)
    });
    repo
}

/// Real waits on the tokio runtime, as the server's timer does.
struct TokioTimer;

impl Timer for TokioTimer {
    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

fn service(model: MockLanguageModel, tasks: MockTaskRepository, repo: MockConversationRepository) -> AssistantService {
    limited(model, tasks, repo, ReplyLimits::default())
}

fn limited(
    model: MockLanguageModel,
    tasks: MockTaskRepository,
    repo: MockConversationRepository,
    limits: ReplyLimits,
) -> AssistantService {
    let mut clock = MockClock::new();
    clock.expect_now().returning(chrono::Utc::now);
    let tasks = Arc::new(TaskService::new(Arc::new(tasks), Arc::new(SystemClock)));
    AssistantService::new(Arc::new(repo), tasks, Arc::new(model), Arc::new(clock), limits, Arc::new(TokioTimer))
}

#[tokio::test]
async fn runs_requested_tools_as_the_caller_and_stores_the_reply() {
    let owner = UserId::new();
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    let mut round = 0;
    model.expect_stream().times(2).returning(move |history, tools| {
        round += 1;
        assert_eq!(tools.len(), 5);
        Ok(if round == 1 {
            turn(vec![ModelEvent::ToolCall(ToolRequest {
                id: "call_1".into(),
                name: "add_task".into(),
                arguments: r#"{"title":"Buy milk"}"#.into(),
            })])
        } else {
            // The result answers the call under the id Parley gave it (its own, unique: not the model's "call_1").
            assert!(matches!(
                history,
                [.., ChatTurn::Assistant { tool_calls, .. }, ChatTurn::Tool { call_id, .. }]
                    if tool_calls[0].id == *call_id && call_id != "call_1"
            ));
            turn(vec![ModelEvent::TextDelta("Added ".into()), ModelEvent::TextDelta("it.".into())])
        })
    });
    let mut tasks = MockTaskRepository::new();
    tasks
        .expect_create()
        .withf(move |task, by| task.owner == owner && by.user == owner && task.title.as_str() == "Buy milk")
        .times(1)
        .returning(|_, _| Ok(()));
    let service = service(model, tasks, conversations(owner, stored.clone()));

    let (id, _) = service
        .say(
            owner,
            Some(ConversationId::new()),
            MessageText::parse("add a task to buy milk").unwrap_or_else(|_| unreachable!()),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut events = Vec::new();
    let reply = service.reply(owner, id, Origin::Chat, &mut |e| events.push(e)).await.unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(reply.content, "Added it.");
    assert_eq!(reply.tool_calls.len(), 1);
    assert_eq!(reply.tool_calls[0].status, ToolStatus::Ok);
    assert!(matches!(&events[0], AssistantEvent::ToolCall(call) if call.name == "add_task"));
    assert_eq!(events[1..], [AssistantEvent::Delta("Added ".into()), AssistantEvent::Delta("it.".into())]);
    let roles: Vec<Role> = stored.lock().map(|m| m.iter().map(|m| m.role).collect()).unwrap_or_default();
    assert_eq!(roles, vec![Role::User, Role::Assistant]);
}

#[tokio::test]
async fn a_failing_tool_is_an_error_result_the_model_sees() {
    let owner = UserId::new();
    let mut model = MockLanguageModel::new();
    let mut round = 0;
    model.expect_stream().returning(move |history, _| {
        round += 1;
        Ok(if round == 1 {
            turn(vec![ModelEvent::ToolCall(ToolRequest {
                id: "c".into(),
                name: "delete_task".into(),
                arguments: format!(r#"{{"task_id":"{}"}}"#, parley_kernel::TaskId::new()),
            })])
        } else {
            assert!(matches!(history.last(), Some(ChatTurn::Tool { content, .. }) if content.contains("FORBIDDEN")));
            turn(vec![ModelEvent::TextDelta("That is not yours.".into())])
        })
    });
    let mut tasks = MockTaskRepository::new();
    // A deletion waits for approval: its preview reads the task, and finds it is not the caller's.
    tasks.expect_get().returning(|_, _| Err(parley_tasks::TaskError::Forbidden));
    tasks.expect_delete().never();
    let service = service(model, tasks, conversations(owner, Arc::default()));
    let reply =
        service.reply(owner, ConversationId::new(), Origin::Chat, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.tool_calls[0].status, ToolStatus::Error);
    assert_eq!(
        reply.tool_calls[0].result.as_ref().map(|r| r["error"]["code"].clone()),
        Some(serde_json::json!("FORBIDDEN"))
    );
}

#[tokio::test]
async fn stops_after_five_rounds_of_tool_calls() {
    let owner = UserId::new();
    let mut model = MockLanguageModel::new();
    model.expect_stream().times(MAX_ROUNDS).returning(|_, _| {
        Ok(turn(vec![ModelEvent::ToolCall(ToolRequest {
            id: "c".into(),
            name: "list_tasks".into(),
            arguments: String::new(),
        })]))
    });
    let mut tasks = MockTaskRepository::new();
    tasks
        .expect_list()
        .returning(|_, _, _| Ok(parley_kernel::Page { items: vec![], next_cursor: None, total: 0, total_exact: true }));
    let service = service(model, tasks, conversations(owner, Arc::default()));
    let reply =
        service.reply(owner, ConversationId::new(), Origin::Chat, &mut |_| {}).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.tool_calls.len(), MAX_ROUNDS);
}

#[tokio::test]
async fn model_failure_keeps_the_user_message_and_stores_no_reply() {
    let owner = UserId::new();
    let stored = Arc::new(Mutex::new(Vec::new()));
    let mut model = MockLanguageModel::new();
    model.expect_stream().returning(|_, _| Err(ModelError::Timeout));
    let service = service(model, MockTaskRepository::new(), conversations(owner, stored.clone()));
    let (id, _) = service
        .say(owner, Some(ConversationId::new()), MessageText::parse("hello").unwrap_or_else(|_| unreachable!()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = service.reply(owner, id, Origin::Chat, &mut |_| {}).await;
    assert!(matches!(outcome, Err(AssistantError::Model(ModelError::Timeout))));
    assert_eq!(stored.lock().map(|m| m.len()).unwrap_or_default(), 1);
}
