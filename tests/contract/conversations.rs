//! `ConversationRepository` contract.

use std::sync::Arc;

use parley_conversations::{
    Conversation, ConversationError, ConversationTitle, FeedbackKind, Message, Role, ToolCall, ToolStatus,
};
use parley_kernel::{ConversationId, MessageId, PageRequest, Timestamp, UserId};
use serde_json::json;

use crate::stores::{Stores, at, user};

fn conversation(owner: UserId, title: &str, created: Timestamp) -> Conversation {
    Conversation {
        id: ConversationId::new(),
        owner,
        title: ConversationTitle::from_stored(title.to_owned()),
        created_at: created,
        updated_at: created,
    }
}

async fn stored(stores: &Stores, owner: UserId, title: &str, created: Timestamp) -> Conversation {
    let conversation = conversation(owner, title, created);
    stores.conversations.create(&conversation).await.expect("create conversation");
    conversation
}

fn message(role: Role, content: &str, created: Timestamp) -> Message {
    Message { id: MessageId::new(), role, content: content.to_owned(), tool_calls: Vec::new(), created_at: created }
}

fn page(limit: i64) -> PageRequest {
    PageRequest::new(Some(limit), None).expect("limit")
}

pub async fn conversation_create_then_get(stores: Stores) {
    let owner = user(&stores).await;
    let created = conversation(owner, "Plan the week", at(1));

    stores.conversations.create(&created).await.expect("create");
    let detail = stores.conversations.get(owner, created.id, 100).await.expect("get");

    assert_eq!(detail.conversation, created);
    assert!(detail.messages.is_empty());
}

pub async fn conversation_list_order_and_message_count(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let older = stored(&stores, owner, "older", at(1)).await;
    let newer = stored(&stores, owner, "newer", at(2)).await;
    stored(&stores, other, "not mine", at(3)).await;
    let before = stores.conversations.list(owner, &page(10)).await.expect("list");

    stores.conversations.append(owner, older.id, &message(Role::User, "hello", at(5))).await.expect("append");
    stores.conversations.append(owner, older.id, &message(Role::Assistant, "hi", at(6))).await.expect("append");
    let after = stores.conversations.list(owner, &page(10)).await.expect("list");

    let ids = |summaries: &[parley_conversations::ConversationSummary]| {
        summaries.iter().map(|s| (s.conversation.id, s.message_count)).collect::<Vec<_>>()
    };
    assert_eq!(ids(&before.items), [(newer.id, 0), (older.id, 0)]);
    assert_eq!(before.total, 2);
    assert_eq!(ids(&after.items), [(older.id, 2), (newer.id, 0)], "the appended one moves first");
    assert_eq!(after.items[0].conversation.updated_at, at(6), "updated_at is the last message's time");
    assert_eq!(after.items[0].conversation.created_at, at(1));
    assert_eq!((after.total, after.next_cursor), (2, None));
}

pub async fn conversation_list_pagination_walk(stores: Stores) {
    let owner = user(&stores).await;
    let mut expected = Vec::new();
    for i in 0..9 {
        // Pairs share an instant: the id must break the tie.
        let conversation = stored(&stores, owner, &format!("chat {i}"), at(i / 2)).await;
        expected.push(conversation);
    }
    expected.sort_by_key(|c| std::cmp::Reverse((c.updated_at, c.id)));

    let mut seen = Vec::new();
    let mut request = page(4);
    loop {
        let listed = stores.conversations.list(owner, &request).await.expect("list");
        assert_eq!(listed.total, 9, "total ignores the cursor");
        seen.extend(listed.items.into_iter().map(|s| s.conversation));
        match listed.next_cursor {
            Some(cursor) => request = PageRequest::new(Some(4), Some(cursor)).expect("limit"),
            None => break,
        }
        assert!(seen.len() <= 9, "pagination does not end");
    }

    assert_eq!(seen, expected, "every conversation once, most recent first");
}

pub async fn conversation_messages_oldest_first_with_tool_calls(stores: Stores) {
    let owner = user(&stores).await;
    let chat = stored(&stores, owner, "tools", at(1)).await;
    let question = message(Role::User, "add a task to buy milk, and list them", at(2));
    let mut answer = message(Role::Assistant, "Done: «buy milk» ✓", at(3));
    answer.tool_calls = vec![
        ToolCall {
            id: "call_1".to_owned(),
            name: "add_task".to_owned(),
            arguments: r#"{"title":"buy milk"}"#.to_owned(),
            result: Some(json!({"id": "abc", "title": "buy milk", "nested": {"list": [1, 2.5, null, true]}})),
            status: ToolStatus::Ok,
        },
        ToolCall {
            id: "call_2".to_owned(),
            name: "list_tasks".to_owned(),
            arguments: "{not json".to_owned(),
            result: None,
            status: ToolStatus::Error,
        },
    ];
    let follow_up = message(Role::User, "thanks", at(4));

    for m in [&question, &answer, &follow_up] {
        stores.conversations.append(owner, chat.id, m).await.expect("append");
    }
    let detail = stores.conversations.get(owner, chat.id, 100).await.expect("get");

    assert_eq!(detail.messages, [question, answer, follow_up]);
    assert_eq!(detail.conversation.updated_at, at(4));
}

pub async fn conversation_get_unknown_or_foreign(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let chat = stored(&stores, owner, "mine", at(1)).await;

    let unknown = stores.conversations.get(owner, ConversationId::new(), 100).await;
    let foreign = stores.conversations.get(other, chat.id, 100).await;

    assert!(matches!(unknown, Err(ConversationError::NotFound)), "{unknown:?}");
    assert!(matches!(foreign, Err(ConversationError::Forbidden)), "{foreign:?}");
}

pub async fn conversation_append_unknown_or_foreign(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let chat = stored(&stores, owner, "mine", at(1)).await;

    let unknown = stores.conversations.append(owner, ConversationId::new(), &message(Role::User, "x", at(2))).await;
    let foreign = stores.conversations.append(other, chat.id, &message(Role::User, "intrusion", at(3))).await;

    assert!(matches!(unknown, Err(ConversationError::NotFound)), "{unknown:?}");
    assert!(matches!(foreign, Err(ConversationError::Forbidden)), "{foreign:?}");
    let detail = stores.conversations.get(owner, chat.id, 100).await.expect("get");
    assert!(detail.messages.is_empty(), "a refused append stores nothing");
    assert_eq!(detail.conversation, chat, "and does not touch updated_at");
}

pub async fn conversation_delete_unknown_or_foreign(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let chat = stored(&stores, owner, "mine", at(1)).await;

    let unknown = stores.conversations.delete(owner, ConversationId::new()).await;
    let foreign = stores.conversations.delete(other, chat.id).await;

    assert!(matches!(unknown, Err(ConversationError::NotFound)), "{unknown:?}");
    assert!(matches!(foreign, Err(ConversationError::Forbidden)), "{foreign:?}");
    assert!(stores.conversations.get(owner, chat.id, 100).await.is_ok(), "a refused delete deletes nothing");
}

pub async fn conversation_rename_keeps_updated_at_and_refuses_others(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let chat = stored(&stores, owner, "mine", at(1)).await;

    let title = ConversationTitle::from_stored("Groceries".to_owned());
    stores.conversations.rename(owner, chat.id, &title).await.expect("rename");
    let unknown = stores.conversations.rename(owner, ConversationId::new(), &title).await;
    let foreign =
        stores.conversations.rename(other, chat.id, &ConversationTitle::from_stored("theirs".to_owned())).await;

    assert!(matches!(unknown, Err(ConversationError::NotFound)), "{unknown:?}");
    assert!(matches!(foreign, Err(ConversationError::Forbidden)), "{foreign:?}");
    let detail = stores.conversations.get(owner, chat.id, 100).await.expect("get");
    assert_eq!(detail.conversation.title.as_str(), "Groceries");
    assert_eq!(detail.conversation.updated_at, chat.updated_at, "a rename is not activity");
}

pub async fn conversation_delete_after_keeps_up_to_the_message(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let chat = stored(&stores, owner, "mine", at(1)).await;
    let question = message(Role::User, "first", at(2));
    let answer = message(Role::Assistant, "reply", at(3));
    // Same instant as `again`'s predecessor: the id breaks the tie, as reads order them.
    let again = message(Role::User, "second", at(3));
    let late = message(Role::Assistant, "late reply", at(4));
    for m in [&question, &answer, &again, &late] {
        stores.conversations.append(owner, chat.id, m).await.expect("append");
    }

    let foreign = stores.conversations.delete_after(other, chat.id, question.id).await;
    let unknown = stores.conversations.delete_after(owner, chat.id, MessageId::new()).await;
    assert!(matches!(foreign, Err(ConversationError::Forbidden)), "{foreign:?}");
    assert!(matches!(unknown, Err(ConversationError::NotFound)), "{unknown:?}");
    assert_eq!(stores.conversations.get(owner, chat.id, 100).await.expect("get").messages.len(), 4);

    stores.conversations.delete_after(owner, chat.id, answer.id).await.expect("delete after the answer");
    let kept = stores.conversations.get(owner, chat.id, 100).await.expect("get").messages;
    assert_eq!(kept, [question.clone(), answer]);
    stores.conversations.delete_after(owner, chat.id, question.id).await.expect("delete after the question");
    assert_eq!(stores.conversations.get(owner, chat.id, 100).await.expect("get").messages, [question]);
}

pub async fn conversation_feedback_is_stored_latest_wins_and_goes_with_it(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let chat = stored(&stores, owner, "mine", at(1)).await;
    let items = ["a".to_owned(), "wf_b".to_owned()];

    stores.conversations.set_feedback(owner, chat.id, &items, FeedbackKind::Positive, at(2)).await.expect("feedback");
    stores.conversations.set_feedback(owner, chat.id, &items[..1], FeedbackKind::Negative, at(3)).await.expect("again");
    let foreign = stores.conversations.set_feedback(other, chat.id, &items, FeedbackKind::Negative, at(4)).await;
    let unknown =
        stores.conversations.set_feedback(owner, ConversationId::new(), &items, FeedbackKind::Negative, at(4)).await;

    assert!(matches!(foreign, Err(ConversationError::Forbidden)), "{foreign:?}");
    assert!(matches!(unknown, Err(ConversationError::NotFound)), "{unknown:?}");
    let stored = stores.conversations.feedback(owner, chat.id).await.expect("read");
    assert_eq!(stored, [("a".to_owned(), FeedbackKind::Negative), ("wf_b".to_owned(), FeedbackKind::Positive)]);
    assert!(matches!(stores.conversations.feedback(other, chat.id).await, Err(ConversationError::Forbidden)));
    stores.conversations.delete(owner, chat.id).await.expect("delete");
    stores.conversations.create(&chat).await.expect("re-create");
    assert!(
        stores.conversations.feedback(owner, chat.id).await.expect("read").is_empty(),
        "it went with the conversation"
    );
}

pub async fn conversation_delete_takes_its_messages(stores: Stores) {
    let owner = user(&stores).await;
    let doomed = stored(&stores, owner, "doomed", at(1)).await;
    let kept = stored(&stores, owner, "kept", at(2)).await;
    stores.conversations.append(owner, doomed.id, &message(Role::User, "bye", at(3))).await.expect("append");
    let survivor = message(Role::User, "still here", at(4));
    stores.conversations.append(owner, kept.id, &survivor).await.expect("append");

    stores.conversations.delete(owner, doomed.id).await.expect("delete");

    let gone = stores.conversations.get(owner, doomed.id, 100).await;
    assert!(matches!(gone, Err(ConversationError::NotFound)), "{gone:?}");
    assert!(matches!(stores.conversations.delete(owner, doomed.id).await, Err(ConversationError::NotFound)));
    let listed = stores.conversations.list(owner, &page(10)).await.expect("list");
    assert_eq!(listed.items.iter().map(|s| (s.conversation.id, s.message_count)).collect::<Vec<_>>(), [(kept.id, 1)]);
    assert_eq!(stores.conversations.get(owner, kept.id, 100).await.expect("get").messages, [survivor]);
    // Re-creating the same id must not bring old messages back.
    stores.conversations.create(&doomed).await.expect("re-create");
    assert!(stores.conversations.get(owner, doomed.id, 100).await.expect("get").messages.is_empty());
}

pub async fn conversation_concurrent_appends_are_all_kept(stores: Stores) {
    let owner = user(&stores).await;
    let chat = stored(&stores, owner, "busy", at(1)).await;
    let repository = Arc::clone(&stores.conversations);

    let appends = (0..10).map(|i| {
        let repository = Arc::clone(&repository);
        let message = message(Role::User, &format!("message {i}"), at(10 + i));
        tokio::spawn(async move { repository.append(owner, chat.id, &message).await })
    });
    for joined in futures_util::future::join_all(appends).await {
        joined.expect("join").expect("append");
    }

    let detail = stores.conversations.get(owner, chat.id, 100).await.expect("get");
    let contents: Vec<String> = detail.messages.into_iter().map(|m| m.content).collect();
    assert_eq!(contents, (0..10).map(|i| format!("message {i}")).collect::<Vec<_>>(), "oldest first");
    let listed = stores.conversations.list(owner, &page(10)).await.expect("list");
    assert_eq!(listed.items[0].message_count, 10);
}

pub async fn conversation_get_returns_the_most_recent_messages_and_pages_the_rest(stores: Stores) {
    let owner = user(&stores).await;
    let chat = stored(&stores, owner, "Long", at(0)).await;
    let mut written = Vec::new();
    for n in 0..7 {
        let m = message(if n % 2 == 0 { Role::User } else { Role::Assistant }, &format!("m{n}"), at(n + 1));
        stores.conversations.append(owner, chat.id, &m).await.expect("append");
        written.push(m);
    }
    let recent = stores.conversations.get(owner, chat.id, 3).await.expect("get");
    assert_eq!(recent.messages, written[4..], "the three most recent, oldest first");
    assert!(recent.has_more_messages);
    let all = stores.conversations.get(owner, chat.id, 7).await.expect("get");
    assert_eq!(all.messages, written);
    assert!(!all.has_more_messages);

    let mut seen = Vec::new();
    let mut request = page(3);
    loop {
        let page = stores.conversations.messages(owner, chat.id, &request).await.expect("messages");
        assert_eq!(page.total, 7);
        seen.extend(page.items);
        match page.next_cursor {
            Some(cursor) => request = PageRequest::new(Some(3), Some(cursor)).expect("page"),
            None => break,
        }
    }
    assert_eq!(seen, written, "every message once, oldest first");

    let other = user(&stores).await;
    assert!(matches!(stores.conversations.messages(other, chat.id, &page(3)).await, Err(ConversationError::Forbidden)));
    assert!(matches!(
        stores.conversations.messages(owner, ConversationId::new(), &page(3)).await,
        Err(ConversationError::NotFound)
    ));
}

pub async fn conversation_history_reads_the_newest_messages_that_fit(stores: Stores) {
    let owner = user(&stores).await;
    let chat = stored(&stores, owner, "Budget", at(0)).await;
    // Sizes, oldest first: 10, 10, 30 (a tool call: name 10 + arguments 2 + result 13 + text 5), 10, 10.
    let call = ToolCall {
        id: "c1".into(),
        name: "list_tasks".into(),
        arguments: "{}".into(),
        result: Some(json!({"tasks": [1]})),
        status: ToolStatus::Ok,
    };
    let mut written = Vec::new();
    for n in 0..5 {
        let mut m = message(Role::User, &format!("message {n}."), at(n + 1));
        if n == 2 {
            m = Message { role: Role::Assistant, content: "Done.".into(), tool_calls: vec![call.clone()], ..m };
        }
        stores.conversations.append(owner, chat.id, &m).await.expect("append");
        written.push(m);
    }
    assert_eq!(written.iter().map(Message::context_chars).collect::<Vec<_>>(), [10, 10, 30, 10, 10]);

    // Before each message taken, 0, 10, 20 characters: under 25. The third does not fit; the caller decides.
    let fit = stores.conversations.history(owner, chat.id, 100, 25).await.expect("history");
    assert_eq!(fit.messages, written[2..], "newest first while what came before is under the budget");
    assert!(fit.has_more_messages);
    let exact = stores.conversations.history(owner, chat.id, 100, 20).await.expect("history");
    assert_eq!(exact.messages, written[3..]);
    let capped = stores.conversations.history(owner, chat.id, 1, 1_000).await.expect("history");
    assert_eq!(capped.messages, written[4..]);
    assert!(capped.has_more_messages);
    let all = stores.conversations.history(owner, chat.id, 100, 1_000).await.expect("history");
    assert_eq!(all.messages, written, "the tool call and its result come back whole");
    assert!(!all.has_more_messages);
    let five = stores.conversations.history(owner, chat.id, 5, 1_000).await.expect("history");
    assert_eq!(five.messages, written, "as many messages as the most taken");
    assert!(!five.has_more_messages, "and none older");
    let four = stores.conversations.history(owner, chat.id, 4, 1_000).await.expect("history");
    assert_eq!(four.messages, written[1..]);
    assert!(four.has_more_messages);
    let tiny = stores.conversations.history(owner, chat.id, 100, 0).await.expect("history");
    assert_eq!(tiny.messages, written[4..], "the newest message always comes");
    assert!(tiny.has_more_messages);

    let empty = stored(&stores, owner, "Empty", at(0)).await;
    let none = stores.conversations.history(owner, empty.id, 100, 1_000).await.expect("history");
    assert!(none.messages.is_empty() && !none.has_more_messages);
    let other = user(&stores).await;
    assert!(matches!(
        stores.conversations.history(other, chat.id, 100, 1_000).await,
        Err(ConversationError::Forbidden)
    ));
    assert!(matches!(
        stores.conversations.history(owner, ConversationId::new(), 100, 1_000).await,
        Err(ConversationError::NotFound)
    ));
}
