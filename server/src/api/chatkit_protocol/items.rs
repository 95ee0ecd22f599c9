//! Stored conversations and messages as ChatKit threads and thread items,
//! and the assistant's events as `ThreadStreamEvent`s. The JSON shapes are
//! those of `chatkit/types.py` serialised as the reference server does
//! (`exclude_none`: absent rather than `null`).

use chrono::{DateTime, SecondsFormat, Utc};
use parley_conversations::{Conversation, Message, Role, ToolCall, ToolStatus};
use serde_json::{Value, json};

/// The prefix of a workflow item's id: the tool calls of the assistant
/// message whose id follows.
pub const WORKFLOW_PREFIX: &str = "wf_";

pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A `Thread` with `items` as its first page.
pub fn thread(conversation: &Conversation, items: Value) -> Value {
    json!({
        "id": conversation.id.to_string(),
        "title": conversation.title.as_str(),
        "created_at": time(conversation.created_at),
        "status": {"type": "active"},
        "metadata": {},
        "items": items,
    })
}

/// A `Page`: `after` only when there is more.
pub fn page(data: Vec<Value>, has_more: bool, after: Option<String>) -> Value {
    let mut page = json!({"data": data, "has_more": has_more});
    if let (true, Some(after)) = (has_more, after) {
        page["after"] = Value::String(after);
    }
    page
}

pub fn empty_page() -> Value {
    page(Vec::new(), false, None)
}

pub fn user_message(thread_id: &str, id: &str, text: &str, at: DateTime<Utc>) -> Value {
    json!({
        "type": "user_message",
        "id": id,
        "thread_id": thread_id,
        "created_at": time(at),
        "content": [{"type": "input_text", "text": text}],
        "attachments": [],
        "inference_options": {},
    })
}

pub fn output_text(text: &str) -> Value {
    json!({"annotations": [], "text": text, "type": "output_text"})
}

pub fn assistant_message(thread_id: &str, id: &str, text: Option<&str>, at: DateTime<Utc>) -> Value {
    let content: Vec<Value> = text.map(output_text).into_iter().collect();
    json!({
        "type": "assistant_message",
        "id": id,
        "thread_id": thread_id,
        "created_at": time(at),
        "content": content,
    })
}

pub fn workflow(thread_id: &str, id: &str, tasks: Vec<Value>, at: DateTime<Utc>) -> Value {
    json!({
        "type": "workflow",
        "id": id,
        "thread_id": thread_id,
        "created_at": time(at),
        "workflow": {"type": "custom", "tasks": tasks, "expanded": false},
    })
}

/// A tool call as a workflow task: its name and outcome, then its arguments
/// and result.
pub fn task(call: &ToolCall) -> Value {
    let outcome = match call.status {
        ToolStatus::Ok => "ok",
        ToolStatus::Error => "error",
    };
    let result = call.result.as_ref().map_or_else(|| "null".to_owned(), ToString::to_string);
    json!({
        "type": "custom",
        "status_indicator": "complete",
        "title": format!("{} ({outcome})", call.name),
        "content": format!("Arguments: `{}`\n\nResult: `{result}`", call.arguments),
    })
}

/// The items of one stored message: a user message; or an assistant
/// message's workflow (its tool calls) then its text.
pub fn items_of(thread_id: &str, message: &Message) -> Vec<Value> {
    let id = message.id.to_string();
    match message.role {
        Role::User => vec![user_message(thread_id, &id, &message.content, message.created_at)],
        Role::Assistant => {
            let mut items = Vec::new();
            if !message.tool_calls.is_empty() {
                let tasks = message.tool_calls.iter().map(task).collect();
                items.push(workflow(thread_id, &format!("{WORKFLOW_PREFIX}{id}"), tasks, message.created_at));
            }
            if !message.content.is_empty() {
                items.push(assistant_message(thread_id, &id, Some(&message.content), message.created_at));
            }
            items
        }
    }
}

fn item_event(kind: &str, item: Value) -> Value {
    json!({"type": kind, "item": item})
}

fn update(item_id: &str, update: Value) -> Value {
    json!({"type": "thread.item.updated", "item_id": item_id, "update": update})
}

/// Turns the assistant's events into `ThreadStreamEvent`s: text goes into
/// an `assistant_message` item (streamed as `text_delta`s), tool calls into
/// a `workflow` item with one task per call. An item is done when the other
/// kind starts or the reply ends. The first text item carries the id the
/// reply is stored under.
pub struct Replay {
    thread_id: String,
    reply_id: String,
    text: Option<(String, String, DateTime<Utc>)>,
    workflow: Option<(String, Vec<Value>, DateTime<Utc>)>,
    texts: usize,
    workflows: usize,
}

impl Replay {
    pub fn new(thread_id: String, reply_id: String) -> Self {
        Self { thread_id, reply_id, text: None, workflow: None, texts: 0, workflows: 0 }
    }

    fn next_id(&self, prefix: &str, count: usize) -> String {
        match count {
            0 => format!("{prefix}{}", self.reply_id),
            n => format!("{prefix}{}-{}", self.reply_id, n + 1),
        }
    }

    pub fn delta(&mut self, delta: &str, out: &mut Vec<Value>) {
        self.close_workflow(out);
        if self.text.is_none() {
            let id = self.next_id("", self.texts);
            self.texts += 1;
            let now = Utc::now();
            out.push(item_event("thread.item.added", assistant_message(&self.thread_id, &id, None, now)));
            out.push(update(
                &id,
                json!({"type": "assistant_message.content_part.added", "content_index": 0, "content": output_text("")}),
            ));
            self.text = Some((id, String::new(), now));
        }
        if let Some((id, text, _)) = &mut self.text {
            text.push_str(delta);
            out.push(update(
                id,
                json!({"type": "assistant_message.content_part.text_delta", "content_index": 0, "delta": delta}),
            ));
        }
    }

    pub fn tool_call(&mut self, call: &ToolCall, out: &mut Vec<Value>) {
        self.close_text(out);
        if self.workflow.is_none() {
            let id = self.next_id(WORKFLOW_PREFIX, self.workflows);
            self.workflows += 1;
            let now = Utc::now();
            out.push(item_event("thread.item.added", workflow(&self.thread_id, &id, Vec::new(), now)));
            self.workflow = Some((id, Vec::new(), now));
        }
        if let Some((id, tasks, _)) = &mut self.workflow {
            let task = task(call);
            out.push(update(id, json!({"type": "workflow.task.added", "task_index": tasks.len(), "task": task})));
            tasks.push(task);
        }
    }

    fn close_text(&mut self, out: &mut Vec<Value>) {
        if let Some((id, text, at)) = self.text.take() {
            out.push(update(
                &id,
                json!({"type": "assistant_message.content_part.done", "content_index": 0, "content": output_text(&text)}),
            ));
            out.push(item_event("thread.item.done", assistant_message(&self.thread_id, &id, Some(&text), at)));
        }
    }

    fn close_workflow(&mut self, out: &mut Vec<Value>) {
        if let Some((id, tasks, at)) = self.workflow.take() {
            out.push(item_event("thread.item.done", workflow(&self.thread_id, &id, tasks, at)));
        }
    }

    /// Changes wait for approval: a widget item with Confirm and Cancel,
    /// answered through `threads.custom_action` (`parley.plan.approve` /
    /// `parley.plan.reject`, `payload.plan_id`).
    pub fn approval(&mut self, plan: &parley_tasks::Plan, out: &mut Vec<Value>) {
        self.close_text(out);
        self.close_workflow(out);
        out.push(item_event("thread.item.done", plan_widget(&self.thread_id, plan, Utc::now())));
    }

    /// Ends the open items.
    pub fn finish(&mut self, out: &mut Vec<Value>) {
        self.close_text(out);
        self.close_workflow(out);
    }
}

pub fn error_event(message: &str, allow_retry: bool) -> Value {
    json!({"type": "error", "code": "custom", "message": message, "allow_retry": allow_retry})
}

pub fn stream_options() -> Value {
    // The reply runs to its end and is stored even if the client goes away,
    // so the component offers no cancel button.
    json!({"type": "stream_options", "stream_options": {"allow_cancel": false}})
}

/// The `widget` item of a plan waiting for approval.
pub fn plan_widget(thread_id: &str, plan: &parley_tasks::Plan, at: DateTime<Utc>) -> Value {
    let lines: Vec<String> = plan.changes.iter().map(parley_tasks::PlannedChange::summary).collect();
    let payload = json!({"plan_id": plan.id.to_string()});
    let mut children = vec![json!({"type": "Text", "value": "This needs your approval:", "weight": "semibold"})];
    children.extend(lines.iter().map(|line| json!({"type": "Text", "value": line})));
    json!({
        "type": "widget",
        "id": format!("plan_{}", plan.id),
        "thread_id": thread_id,
        "created_at": time(at),
        "widget": {
            "type": "Card",
            "children": children,
            "confirm": {"label": "Confirm", "action": {"type": PLAN_APPROVE, "payload": payload}},
            "cancel": {"label": "Cancel", "action": {"type": PLAN_REJECT, "payload": payload}},
        },
        "copy_text": lines.join("\n"),
    })
}

/// The `threads.custom_action` types a plan widget sends.
pub const PLAN_APPROVE: &str = "parley.plan.approve";
pub const PLAN_REJECT: &str = "parley.plan.reject";
