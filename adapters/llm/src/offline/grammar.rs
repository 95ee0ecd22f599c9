//! The offline assistant's command grammar (pure): one user message to the
//! [`Command`] it asks for.

use parley_application::tools::ListStatus;
use uuid::Uuid;

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
}
