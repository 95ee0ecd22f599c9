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
use serde_json::{Value, json};
use uuid::Uuid;

/// Tool names, exactly as the application offers them.
const ADD_TASK: &str = "add_task";
const LIST_TASKS: &str = "list_tasks";
const COMPLETE_TASK: &str = "complete_task";
const UPDATE_TASK: &str = "update_task";
const DELETE_TASK: &str = "delete_task";

const HELP: &str = "I'm the offline assistant, so I understand a few simple commands: \
\"add a task to <title>\", \"list my tasks\" (or \"show pending tasks\" / \"show completed tasks\"), \
\"complete <title>\", \"delete <title>\" and \"rename <title> to <new title>\". \
You can use a task's title or its id.";

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
    async fn stream(&self, history: Vec<ChatTurn>, tools: Vec<ToolSpec>) -> Result<ModelStream, ModelError> {
        let offered: Vec<&str> = tools.iter().map(|tool| tool.name).collect();
        let events = match respond(&history) {
            Reply::Call(name, arguments) if offered.contains(&name) => {
                vec![tool_call(name, &arguments)]
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

// ---------------------------------------------------------------------------
// The command grammar (pure).

/// Which tasks to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListStatus {
    All,
    Pending,
    Completed,
}

impl ListStatus {
    const fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Pending => "pending",
            Self::Completed => "completed",
        }
    }
}

/// A task named by the user: its id, or (part of) its title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    Id(Uuid),
    Title(String),
}

impl Target {
    fn parse(raw: &str) -> Option<Self> {
        let raw = clean_title(raw);
        if raw.is_empty() {
            return None;
        }
        Some(Uuid::parse_str(&raw).map_or(Self::Title(raw), Self::Id))
    }
}

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Add { title: String },
    List { status: ListStatus },
    Complete { target: Target },
    Delete { target: Target },
    Rename { target: Target, new_title: String },
    Unknown,
}

/// Parses one user message. Case-insensitive; tolerant of polite words,
/// trailing punctuation and quotes around titles.
pub(crate) fn parse_command(message: &str) -> Command {
    let words: Vec<&str> = message.split_whitespace().collect();
    let mut words = strip_politeness(&words);
    // Trailing punctuation on the last word ("tasks?", "milk.").
    if let Some(last) = words.pop() {
        let trimmed = last.trim_end_matches(['.', '!', '?', ',', ';']);
        if !trimmed.is_empty() {
            words.push(trimmed);
        }
    }
    let Some((first, rest)) = words.split_first() else {
        return Command::Unknown;
    };
    let verb = keyword(first);
    match verb.as_str() {
        "add" | "create" | "new" => parse_add(&verb, rest),
        "list" | "show" | "display" | "view" | "what" | "whats" | "what's" => parse_list(rest),
        "complete" | "finish" | "done" | "mark" | "check" | "tick" => parse_complete(&verb, rest),
        "delete" | "remove" | "erase" | "drop" => parse_delete(rest),
        "rename" | "update" | "change" | "edit" => parse_rename(rest),
        "my" | "tasks" | "todos" => parse_list(&words),
        _ => Command::Unknown,
    }
}

/// Lowercase, without surrounding punctuation: `"Tasks:"` → `tasks`.
fn keyword(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-').to_lowercase()
}

fn is(word: Option<&&str>, options: &[&str]) -> bool {
    word.is_some_and(|word| options.contains(&keyword(word).as_str()))
}

fn strip_politeness<'a>(words: &[&'a str]) -> Vec<&'a str> {
    let mut start = 0;
    let lower: Vec<String> = words.iter().map(|word| keyword(word)).collect();
    loop {
        let rest = &lower[start..];
        let skip = match rest {
            [a, b, ..] if matches!(a.as_str(), "can" | "could" | "would" | "will") && b == "you" => 2,
            [a, ..] if matches!(a.as_str(), "please" | "pls" | "hey" | "ok" | "okay" | "now" | "i" | "want") => 1,
            [a, b, ..] if a == "i'd" && b == "like" => 2,
            [a, ..] if a == "to" && start > 0 => 1,
            _ => 0,
        };
        if skip == 0 {
            break;
        }
        start += skip;
    }
    let mut end = words.len();
    if end > start && lower[end - 1] == "please" {
        end -= 1;
    }
    words[start..end].to_vec()
}

/// Drops leading `the`/`task`/`my` words: "complete the task X" → "X".
fn skip_task_words<'a, 'b>(mut rest: &'b [&'a str]) -> &'b [&'a str] {
    while rest.len() > 1 && is(rest.first(), &["task", "the", "my", "todo", "to-do"]) {
        rest = &rest[1..];
    }
    rest
}

fn join(words: &[&str]) -> String {
    words.join(" ")
}

/// Trims whitespace, quotes and trailing punctuation from a title.
fn clean_title(raw: &str) -> String {
    const QUOTES: [char; 7] = ['"', '\'', '“', '”', '‘', '’', '`'];
    let mut title = raw.trim();
    loop {
        let before = title;
        title = title.trim_end_matches(['.', '!', '?', ',', ';', ':']).trim();
        if let (Some(first), Some(last)) = (title.chars().next(), title.chars().last())
            && QUOTES.contains(&first)
            && QUOTES.contains(&last)
            && title.chars().count() >= 2
        {
            title = title[first.len_utf8()..title.len() - last.len_utf8()].trim();
        }
        if title == before {
            break;
        }
    }
    title.to_owned()
}

fn parse_add(verb: &str, rest: &[&str]) -> Command {
    let mut rest = rest;
    // `add (a|an|new) task (to|called|named)? <title>`; `create a task …`; `new task …`.
    let mut probe = rest;
    while is(probe.first(), &["a", "an", "new", "another", "one", "the"]) {
        probe = &probe[1..];
    }
    let explicit = is(probe.first(), &["task", "todo", "to-do", "item", "reminder"]);
    if explicit {
        rest = &probe[1..];
        if is(rest.first(), &["to", "called", "named", "titled", "for", "that", "saying"]) {
            rest = &rest[1..];
            if is(rest.first(), &["says"]) {
                rest = &rest[1..];
            }
        }
    } else if verb != "add" {
        return Command::Unknown;
    } else {
        // Plain `add <title>`, maybe `… to my tasks` / `… to the list`.
        let lower: Vec<String> = rest.iter().map(|word| keyword(word)).collect();
        let n = lower.len();
        if n >= 3 && lower[n - 3] == "to" && matches!(lower[n - 2].as_str(), "my" | "the") {
            if matches!(lower[n - 1].as_str(), "tasks" | "list" | "todos" | "todo" | "to-dos") {
                rest = &rest[..n - 3];
            }
        } else if n >= 4
            && lower[n - 4] == "to"
            && matches!(lower[n - 3].as_str(), "my" | "the")
            && matches!(lower[n - 2].as_str(), "task" | "todo" | "to-do")
            && lower[n - 1] == "list"
        {
            rest = &rest[..n - 4];
        }
    }
    let title = clean_title(&join(rest));
    if title.is_empty() { Command::Unknown } else { Command::Add { title } }
}

fn parse_list(rest: &[&str]) -> Command {
    let mut status = ListStatus::All;
    let mut saw_tasks = rest.is_empty();
    for word in rest {
        match keyword(word).as_str() {
            "tasks" | "task" | "todos" | "to-dos" | "todo" | "list" => saw_tasks = true,
            "pending" | "open" | "incomplete" | "unfinished" | "outstanding" | "remaining" | "active" => {
                status = ListStatus::Pending;
            }
            "completed" | "complete" | "done" | "finished" => status = ListStatus::Completed,
            "me" | "my" | "all" | "the" | "of" | "are" | "is" | "on" | "i" | "have" | "do" | "current" => {}
            _ => return Command::Unknown,
        }
    }
    if saw_tasks { Command::List { status } } else { Command::Unknown }
}

fn parse_complete(verb: &str, rest: &[&str]) -> Command {
    let mut rest = rest;
    match verb {
        "mark" => {
            // `mark done X`, `mark as done X`, `mark X as done`, `mark X done`.
            if is(rest.first(), &["as"]) && is(rest.get(1), &["done", "complete", "completed", "finished"]) {
                rest = &rest[2..];
            } else if is(rest.first(), &["done", "complete", "completed", "finished"]) {
                rest = &rest[1..];
            } else {
                let n = rest.len();
                if n >= 2 && is(rest.last(), &["done", "complete", "completed", "finished"]) {
                    rest = if is(rest.get(n - 2), &["as"]) { &rest[..n - 2] } else { &rest[..n - 1] };
                } else {
                    return Command::Unknown;
                }
            }
        }
        "check" | "tick" => {
            // `check off X`, `tick off X`.
            if is(rest.first(), &["off"]) {
                rest = &rest[1..];
            } else if is(rest.last(), &["off"]) && rest.len() > 1 {
                rest = &rest[..rest.len() - 1];
            } else {
                return Command::Unknown;
            }
        }
        _ => {}
    }
    let rest = skip_task_words(rest);
    Target::parse(&join(rest)).map_or(Command::Unknown, |target| Command::Complete { target })
}

fn parse_delete(rest: &[&str]) -> Command {
    let mut rest = skip_task_words(rest);
    // `… from my tasks` / `… from the list`.
    let n = rest.len();
    if n >= 4
        && is(rest.get(n - 3), &["from"])
        && is(rest.get(n - 2), &["my", "the"])
        && is(rest.last(), &["tasks", "list", "todos"])
    {
        rest = &rest[..n - 3];
    }
    Target::parse(&join(rest)).map_or(Command::Unknown, |target| Command::Delete { target })
}

fn parse_rename(rest: &[&str]) -> Command {
    let mut rest = rest;
    // `change the title of X to Y`, `rename task X to Y`.
    if is(rest.first(), &["the"]) && is(rest.get(1), &["title", "name"]) && is(rest.get(2), &["of"]) {
        rest = &rest[3..];
    }
    let rest = skip_task_words(rest);
    let text = join(rest);
    // A quoted target may itself contain " to ".
    let quoted = split_quoted(&text).and_then(|(target, after)| {
        let new_title = after.get(3..)?;
        after.get(..3)?.eq_ignore_ascii_case("to ").then(|| (target, new_title.to_owned()))
    });
    let (target, new_title) = match quoted {
        Some(split) => split,
        None => {
            let Some(at) = rest.iter().position(|word| keyword(word) == "to") else {
                return Command::Unknown;
            };
            (join(&rest[..at]), join(&rest[at + 1..]))
        }
    };
    let new_title = clean_title(&new_title);
    match Target::parse(&target) {
        Some(target) if !new_title.is_empty() => Command::Rename { target, new_title },
        _ => Command::Unknown,
    }
}

/// `"a b" rest` → (`a b`, `rest`), for any of the usual quote pairs.
fn split_quoted(text: &str) -> Option<(String, String)> {
    let open = text.chars().next()?;
    let close = match open {
        '"' => '"',
        '\'' => '\'',
        '“' => '”',
        '‘' => '’',
        '`' => '`',
        _ => return None,
    };
    let inner = &text[open.len_utf8()..];
    let end = inner.find(close)?;
    Some((inner[..end].to_owned(), inner[end + close.len_utf8()..].trim().to_owned()))
}

// ---------------------------------------------------------------------------
// The conversation logic (pure): what to do next given the history.

#[derive(Debug, Clone, PartialEq)]
enum Reply {
    Call(&'static str, Value),
    Text(String),
}

/// A tool call of the current exchange with its result, if any.
struct Round<'a> {
    call: &'a ToolRequest,
    result: Option<Value>,
}

fn respond(history: &[ChatTurn]) -> Reply {
    let Some(user_at) = history.iter().rposition(|turn| matches!(turn, ChatTurn::User(_))) else {
        return Reply::Text(HELP.to_owned());
    };
    let ChatTurn::User(message) = &history[user_at] else {
        return Reply::Text(HELP.to_owned());
    };
    let command = parse_command(message);
    let rounds = rounds_since(&history[user_at + 1..]);

    let Some(last) = rounds.last() else {
        return first_step(command);
    };
    let Some(result) = &last.result else {
        return Reply::Text("Sorry, I didn't get an answer from the task tools.".to_owned());
    };
    if let Some(error) = result.get("error") {
        return Reply::Text(describe_error(error));
    }
    let lookup = rounds.iter().find(|round| round.call.name == LIST_TASKS).and_then(|round| round.result.as_ref());
    match (last.call.name.as_str(), &command) {
        (LIST_TASKS, Command::Complete { target: Target::Title(title) })
        | (LIST_TASKS, Command::Delete { target: Target::Title(title) })
        | (LIST_TASKS, Command::Rename { target: Target::Title(title), .. }) => act_on_match(&command, title, result),
        (LIST_TASKS, _) => Reply::Text(describe_list(result, &arguments_of(last.call))),
        (ADD_TASK, _) => {
            Reply::Text(format!("Added \"{}\" to your tasks.", task_title(result).unwrap_or_else(|| "the task".into())))
        }
        (COMPLETE_TASK, _) => {
            Reply::Text(format!("Marked \"{}\" as done.", task_title(result).unwrap_or_else(|| "the task".into())))
        }
        (UPDATE_TASK, _) => {
            let new_title = task_title(result).unwrap_or_else(|| "its new title".into());
            let old_title = old_title(last.call, lookup, &command);
            Reply::Text(match old_title {
                Some(old) if old != new_title => format!("Renamed \"{old}\" to \"{new_title}\"."),
                _ => format!("Updated the task; it is now called \"{new_title}\"."),
            })
        }
        (DELETE_TASK, _) => Reply::Text(match old_title(last.call, lookup, &command) {
            Some(title) => format!("Deleted \"{title}\"."),
            None => "Deleted the task.".to_owned(),
        }),
        _ => Reply::Text("Done.".to_owned()),
    }
}

/// The tool calls made since the user's message, each with its result.
fn rounds_since(turns: &[ChatTurn]) -> Vec<Round<'_>> {
    let mut rounds = Vec::new();
    for turn in turns {
        if let ChatTurn::Assistant { tool_calls, .. } = turn {
            for call in tool_calls {
                let result = turns.iter().find_map(|turn| match turn {
                    ChatTurn::Tool { call_id, content } if *call_id == call.id => {
                        Some(serde_json::from_str(content).unwrap_or(Value::Null))
                    }
                    _ => None,
                });
                rounds.push(Round { call, result });
            }
        }
    }
    rounds
}

fn first_step(command: Command) -> Reply {
    match command {
        Command::Add { title } => Reply::Call(ADD_TASK, json!({ "title": title })),
        Command::List { status } => Reply::Call(LIST_TASKS, json!({ "status": status.as_str() })),
        Command::Complete { target: Target::Id(id) } => Reply::Call(COMPLETE_TASK, json!({ "task_id": id })),
        Command::Delete { target: Target::Id(id) } => Reply::Call(DELETE_TASK, json!({ "task_id": id })),
        Command::Rename { target: Target::Id(id), new_title } => {
            Reply::Call(UPDATE_TASK, json!({ "task_id": id, "title": new_title }))
        }
        Command::Complete { target: Target::Title(_) }
        | Command::Delete { target: Target::Title(_) }
        | Command::Rename { target: Target::Title(_), .. } => Reply::Call(LIST_TASKS, json!({ "status": "all" })),
        Command::Unknown => Reply::Text(HELP.to_owned()),
    }
}

/// Finds the task named `title` in a `list_tasks` result and calls the action.
fn act_on_match(command: &Command, title: &str, list: &Value) -> Reply {
    let tasks: Vec<&Value> =
        list.get("tasks").and_then(Value::as_array).map(|t| t.iter().collect()).unwrap_or_default();
    let wanted = title.to_lowercase();
    let title_of = |task: &Value| task.get("title").and_then(Value::as_str).unwrap_or_default().to_lowercase();
    let exact: Vec<&Value> = tasks.iter().copied().filter(|task| title_of(task) == wanted).collect();
    let chosen = if exact.is_empty() {
        let partial: Vec<&Value> = tasks.iter().copied().filter(|task| title_of(task).contains(&wanted)).collect();
        match partial.as_slice() {
            [one] => Some(*one),
            [] => None,
            several => {
                let names: Vec<String> = several.iter().map(|task| format!("\"{}\"", display_title(task))).collect();
                return Reply::Text(format!(
                    "Several tasks match \"{title}\": {}. Which one do you mean?",
                    names.join(", ")
                ));
            }
        }
    } else {
        // With duplicates, completing prefers one that is still pending.
        let pending = exact.iter().copied().find(|task| task.get("completed") != Some(&Value::Bool(true)));
        match command {
            Command::Complete { .. } => pending.or(exact.first().copied()),
            _ => exact.first().copied(),
        }
    };
    let Some(task) = chosen else {
        return Reply::Text(format!("I couldn't find a task called \"{title}\"."));
    };
    let Some(id) = task.get("id").and_then(Value::as_str) else {
        return Reply::Text(format!("I couldn't find a task called \"{title}\"."));
    };
    match command {
        Command::Complete { .. } => Reply::Call(COMPLETE_TASK, json!({ "task_id": id })),
        Command::Delete { .. } => Reply::Call(DELETE_TASK, json!({ "task_id": id })),
        Command::Rename { new_title, .. } => Reply::Call(UPDATE_TASK, json!({ "task_id": id, "title": new_title })),
        Command::Add { .. } | Command::List { .. } | Command::Unknown => Reply::Text(HELP.to_owned()),
    }
}

fn arguments_of(call: &ToolRequest) -> Value {
    serde_json::from_str(&call.arguments).unwrap_or(Value::Null)
}

fn display_title(task: &Value) -> String {
    task.get("title").and_then(Value::as_str).unwrap_or("untitled").to_owned()
}

fn task_title(result: &Value) -> Option<String> {
    result.get("task").map(display_title)
}

/// The title a task had before the action: from the lookup list, else as the user wrote it.
fn old_title(call: &ToolRequest, lookup: Option<&Value>, command: &Command) -> Option<String> {
    let id = arguments_of(call).get("task_id").and_then(Value::as_str).map(str::to_owned);
    let from_list = lookup.and_then(|list| list.get("tasks")).and_then(Value::as_array).and_then(|tasks| {
        tasks.iter().find(|task| task.get("id").and_then(Value::as_str) == id.as_deref()).map(display_title)
    });
    from_list.or_else(|| match command {
        Command::Delete { target: Target::Title(title) } | Command::Rename { target: Target::Title(title), .. } => {
            Some(title.clone())
        }
        _ => None,
    })
}

fn describe_list(result: &Value, arguments: &Value) -> String {
    let tasks: &[Value] = result.get("tasks").and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let status = arguments.get("status").and_then(Value::as_str).unwrap_or("all");
    let kind = match status {
        "pending" => "pending ",
        "completed" => "completed ",
        _ => "",
    };
    let count = result.get("count").and_then(Value::as_u64).unwrap_or(tasks.len() as u64);
    if count == 0 || tasks.is_empty() {
        return format!("You have no {kind}tasks.");
    }
    let noun = if count == 1 { "task" } else { "tasks" };
    let items: Vec<String> = tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let done = status == "all" && task.get("completed") == Some(&Value::Bool(true));
            format!("{}. {}{}", i + 1, display_title(task), if done { " (done)" } else { "" })
        })
        .collect();
    format!("You have {count} {kind}{noun}: {}", items.join(" "))
}

fn describe_error(error: &Value) -> String {
    let code = error.get("code").and_then(Value::as_str).unwrap_or("");
    let message = error.get("message").and_then(Value::as_str).unwrap_or("something went wrong");
    match code {
        "TASK_NOT_FOUND" => format!("I couldn't find that task: {message}"),
        "FORBIDDEN" => format!("That task isn't yours to change: {message}"),
        "INVALID_ARGUMENTS" => format!("That didn't work, the request was invalid: {message}"),
        _ => format!("Sorry, that didn't work: {message}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn title(t: &str) -> Target {
        Target::Title(t.to_owned())
    }

    fn add(t: &str) -> Command {
        Command::Add { title: t.to_owned() }
    }

    #[test]
    fn add_forms() {
        assert_eq!(parse_command("add a task to buy milk"), add("buy milk"));
        assert_eq!(parse_command("Add task called Buy milk."), add("Buy milk"));
        assert_eq!(parse_command("add task named \"Buy milk\""), add("Buy milk"));
        assert_eq!(parse_command("ADD A TASK 'Call mom'!"), add("Call mom"));
        assert_eq!(parse_command("add task Walk the dog"), add("Walk the dog"));
        assert_eq!(parse_command("add Buy milk"), add("Buy milk"));
        assert_eq!(parse_command("add buy milk to my tasks"), add("buy milk"));
        assert_eq!(parse_command("add buy milk to my task list"), add("buy milk"));
        assert_eq!(parse_command("please add a new task: Pay rent"), add("Pay rent"));
        assert_eq!(parse_command("can you add a task to “Book flights”?"), add("Book flights"));
        assert_eq!(parse_command("create a task called Water plants"), add("Water plants"));
        assert_eq!(parse_command("add"), Command::Unknown);
        assert_eq!(parse_command("add a task"), Command::Unknown);
    }

    #[test]
    fn list_forms() {
        let all = Command::List { status: ListStatus::All };
        let pending = Command::List { status: ListStatus::Pending };
        let completed = Command::List { status: ListStatus::Completed };
        assert_eq!(parse_command("list tasks"), all);
        assert_eq!(parse_command("List my tasks"), all);
        assert_eq!(parse_command("show me my tasks?"), all);
        assert_eq!(parse_command("show all tasks"), all);
        assert_eq!(parse_command("list"), all);
        assert_eq!(parse_command("what are my tasks?"), all);
        assert_eq!(parse_command("show pending tasks"), pending);
        assert_eq!(parse_command("list my pending tasks."), pending);
        assert_eq!(parse_command("Show me my completed tasks"), completed);
        assert_eq!(parse_command("show me all completed tasks"), completed);
        assert_eq!(parse_command("list done tasks"), completed);
        assert_eq!(parse_command("show me the weather"), Command::Unknown);
    }

    #[test]
    fn complete_forms() {
        let milk = Command::Complete { target: title("Buy milk") };
        assert_eq!(parse_command("complete Buy milk"), milk);
        assert_eq!(parse_command("complete task Buy milk"), milk);
        assert_eq!(parse_command("finish task \"Buy milk\"."), milk);
        assert_eq!(parse_command("Mark done Buy milk"), milk);
        assert_eq!(parse_command("mark done task 'Buy milk'"), milk);
        assert_eq!(parse_command("mark Buy milk as done"), milk);
        assert_eq!(parse_command("done Buy milk!"), milk);
        assert_eq!(parse_command("done task Buy milk"), milk);
        assert_eq!(parse_command("please complete the task Buy milk"), milk);
        let id = Uuid::parse_str("0190a5c4-7b1e-7c3a-9d2e-4f5a6b7c8d9e").unwrap();
        assert_eq!(
            parse_command("complete 0190a5c4-7b1e-7c3a-9d2e-4f5a6b7c8d9e"),
            Command::Complete { target: Target::Id(id) }
        );
        assert_eq!(parse_command("complete"), Command::Unknown);
        assert_eq!(parse_command("mark"), Command::Unknown);
    }

    #[test]
    fn delete_forms() {
        let milk = Command::Delete { target: title("Buy milk") };
        assert_eq!(parse_command("delete Buy milk"), milk);
        assert_eq!(parse_command("Delete task Buy milk."), milk);
        assert_eq!(parse_command("remove \"Buy milk\""), milk);
        assert_eq!(parse_command("remove task 'Buy milk'"), milk);
        assert_eq!(parse_command("remove Buy milk from my tasks"), milk);
        let id = Uuid::parse_str("0190a5c4-7b1e-7c3a-9d2e-4f5a6b7c8d9e").unwrap();
        assert_eq!(
            parse_command("delete task \"0190a5c4-7b1e-7c3a-9d2e-4f5a6b7c8d9e\""),
            Command::Delete { target: Target::Id(id) }
        );
        assert_eq!(parse_command("delete"), Command::Unknown);
    }

    #[test]
    fn rename_forms() {
        let expected = Command::Rename { target: title("Buy milk"), new_title: "Buy oat milk".to_owned() };
        assert_eq!(parse_command("rename Buy milk to Buy oat milk"), expected);
        assert_eq!(parse_command("rename task Buy milk to Buy oat milk."), expected);
        assert_eq!(parse_command("update task \"Buy milk\" to \"Buy oat milk\""), expected);
        assert_eq!(parse_command("Change Buy milk TO 'Buy oat milk'"), expected);
        assert_eq!(parse_command("change the title of Buy milk to Buy oat milk"), expected);
        assert_eq!(
            parse_command("rename \"Go to gym\" to Go to the gym"),
            Command::Rename { target: title("Go to gym"), new_title: "Go to the gym".to_owned() }
        );
        let id = Uuid::parse_str("0190a5c4-7b1e-7c3a-9d2e-4f5a6b7c8d9e").unwrap();
        assert_eq!(
            parse_command("rename 0190a5c4-7b1e-7c3a-9d2e-4f5a6b7c8d9e to Pay rent"),
            Command::Rename { target: Target::Id(id), new_title: "Pay rent".to_owned() }
        );
        assert_eq!(parse_command("rename Buy milk"), Command::Unknown);
        assert_eq!(parse_command("rename Buy milk to"), Command::Unknown);
    }

    #[test]
    fn unknown_input() {
        assert_eq!(parse_command(""), Command::Unknown);
        assert_eq!(parse_command("   "), Command::Unknown);
        assert_eq!(parse_command("hello there"), Command::Unknown);
        assert_eq!(parse_command("?"), Command::Unknown);
    }

    #[test]
    fn clean_title_strips_quotes_and_punctuation() {
        assert_eq!(clean_title("  \"Buy milk\". "), "Buy milk");
        assert_eq!(clean_title("'x'"), "x");
        assert_eq!(clean_title("\""), "\"");
        assert_eq!(clean_title("it's fine"), "it's fine");
    }

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
        [ADD_TASK, LIST_TASKS, COMPLETE_TASK, UPDATE_TASK, DELETE_TASK]
            .into_iter()
            .map(|name| ToolSpec { name, description: "", parameters: json!({"type": "object"}) })
            .collect()
    }

    async fn run(history: &[ChatTurn]) -> Vec<ModelEvent> {
        let stream = OfflineAssistant::new().stream(history.to_vec(), tools()).await.unwrap();
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
        json!({"id": id, "title": title, "description": null, "completed": completed, "priority": "medium",
               "due_at": null, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
               "completed_at": null})
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
        assert_eq!(call.name, ADD_TASK);
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
        assert_eq!((call.name.as_str(), args), (LIST_TASKS, json!({"status": "pending"})));
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
        assert_eq!((call.name.as_str(), args), (LIST_TASKS, json!({"status": "all"})));
        let history = answered(history, call, &two_tasks());
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (COMPLETE_TASK, json!({"task_id": MILK})));
        let history = answered(history, call, &json!({"task": task(MILK, "Buy milk", true)}));
        assert_eq!(expect_text(&history).await, "Marked \"Buy milk\" as done.");
    }

    #[tokio::test]
    async fn substring_match_is_used_when_unique() {
        let history = answered(
            vec![ChatTurn::User("delete dog".into())],
            ToolRequest { id: "call_x".into(), name: LIST_TASKS.into(), arguments: "{\"status\":\"all\"}".into() },
            &two_tasks(),
        );
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (DELETE_TASK, json!({"task_id": DOG})));
        let history = answered(history, call, &json!({"deleted": true, "id": DOG}));
        assert_eq!(expect_text(&history).await, "Deleted \"Walk the dog\".");
    }

    #[tokio::test]
    async fn ambiguous_substring_asks_which_one() {
        let list = json!({"tasks": [task(MILK, "Buy milk", false), task(DOG, "Buy bread", false)], "count": 2});
        let history = answered(
            vec![ChatTurn::User("complete buy".into())],
            ToolRequest { id: "call_x".into(), name: LIST_TASKS.into(), arguments: "{}".into() },
            &list,
        );
        let text = expect_text(&history).await;
        assert!(text.contains("Several tasks match \"buy\""), "{text}");
    }

    #[tokio::test]
    async fn unknown_title_says_not_found() {
        let history = answered(
            vec![ChatTurn::User("remove task \"Feed the cat\"".into())],
            ToolRequest { id: "call_x".into(), name: LIST_TASKS.into(), arguments: "{\"status\":\"all\"}".into() },
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
        assert_eq!((call.name.as_str(), args), (UPDATE_TASK, json!({"task_id": MILK, "title": "Buy oat milk"})));
        let history = answered(history, call, &json!({"task": task(MILK, "Buy oat milk", false)}));
        assert_eq!(expect_text(&history).await, "Renamed \"Buy milk\" to \"Buy oat milk\".");

        let history = vec![ChatTurn::User(format!("update task {DOG} to Walk the cat"))];
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (UPDATE_TASK, json!({"task_id": DOG, "title": "Walk the cat"})));
    }

    #[tokio::test]
    async fn id_targets_skip_the_lookup() {
        let (call, args) = expect_call(&[ChatTurn::User(format!("complete {MILK}"))]).await;
        assert_eq!((call.name.as_str(), args), (COMPLETE_TASK, json!({"task_id": MILK})));
        let history = vec![ChatTurn::User(format!("delete {DOG}"))];
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (DELETE_TASK, json!({"task_id": DOG})));
        let history = answered(history, call, &json!({"deleted": true, "id": DOG}));
        assert_eq!(expect_text(&history).await, "Deleted the task.");
    }

    #[tokio::test]
    async fn tool_errors_are_explained() {
        let history = answered(
            vec![ChatTurn::User(format!("complete {MILK}"))],
            ToolRequest {
                id: "call_x".into(),
                name: COMPLETE_TASK.into(),
                arguments: format!("{{\"task_id\":\"{MILK}\"}}"),
            },
            &json!({"error": {"code": "TASK_NOT_FOUND", "message": "Task not found"}}),
        );
        assert_eq!(expect_text(&history).await, "I couldn't find that task: Task not found");
        let history = answered(
            vec![ChatTurn::User("add x".into())],
            ToolRequest { id: "call_y".into(), name: ADD_TASK.into(), arguments: "{}".into() },
            &json!({"error": {"code": "INVALID_ARGUMENTS", "message": "title must not be empty"}}),
        );
        assert!(expect_text(&history).await.contains("title must not be empty"));
    }

    #[tokio::test]
    async fn earlier_exchanges_do_not_confuse_the_next_one() {
        // A finished exchange, then a new user message: a fresh first step.
        let first = answered(
            vec![ChatTurn::User("add Buy milk".into())],
            ToolRequest { id: "call_a".into(), name: ADD_TASK.into(), arguments: "{}".into() },
            &json!({"task": task(MILK, "Buy milk", false)}),
        );
        let mut history = first;
        history.push(ChatTurn::Assistant { content: "Added \"Buy milk\" to your tasks.".into(), tool_calls: vec![] });
        history.push(ChatTurn::User("list completed tasks".into()));
        let (call, args) = expect_call(&history).await;
        assert_eq!((call.name.as_str(), args), (LIST_TASKS, json!({"status": "completed"})));
    }

    #[tokio::test]
    async fn unrecognised_input_gets_help_and_missing_tools_get_text() {
        let text = expect_text(&[ChatTurn::User("what's the weather like?".into())]).await;
        assert!(text.contains("add a task") && text.contains("rename"), "{text}");

        let events: Vec<_> = OfflineAssistant::new()
            .stream(vec![ChatTurn::User("add Buy milk".into())], vec![])
            .await
            .unwrap()
            .collect()
            .await;
        assert!(events.iter().all(|event| matches!(event, Ok(ModelEvent::TextDelta(_)))), "{events:?}");
    }
}
