//! The offline assistant's conversation logic (pure): given the history,
//! the next tool call or the reply text. It speaks the application's tool
//! vocabulary: arguments are built from, and results read as, its types.

use parley_application::tools::{
    AddTask, FailedResult, ListStatus, ListTasks, TaskListResult, TaskRef, TaskResult, TaskTool, TaskView, UpdateTask,
};
use parley_conversations::{ChatTurn, ToolRequest};
use serde_json::Value;

use super::grammar::{Command, Target, parse_command};

pub(super) const HELP: &str = "I'm the offline assistant, so I understand a few simple commands: \
\"add a task to <title>\", \"list my tasks\" (or \"show pending tasks\" / \"show completed tasks\"), \
\"complete <title>\", \"delete <title>\" and \"rename <title> to <new title>\". \
You can use a task's title or its id.";

/// What the assistant does next.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Reply {
    /// Call this tool with these arguments.
    Call(TaskTool, Value),
    Text(String),
}

impl Reply {
    fn call(tool: TaskTool, arguments: impl serde::Serialize) -> Self {
        Self::Call(tool, serde_json::to_value(arguments).unwrap_or(Value::Null))
    }
}

/// A tool call of the current exchange with its result, if any.
struct Round<'a> {
    call: &'a ToolRequest,
    tool: Option<TaskTool>,
    result: Option<Value>,
}

impl Round<'_> {
    /// The result read as `T`, when it is one.
    fn result_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        self.result.as_ref().and_then(|value| T::deserialize(value).ok())
    }

    /// The arguments read as `T`, when they are one.
    fn arguments_as<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(&self.call.arguments).ok()
    }
}

pub(super) fn respond(history: &[ChatTurn]) -> Reply {
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
    if last.result.is_none() {
        return Reply::Text("Sorry, I didn't get an answer from the task tools.".to_owned());
    }
    if let Some(failure) = last.result_as::<FailedResult>() {
        return Reply::Text(describe_error(&failure));
    }
    let lookup: Option<TaskListResult> =
        rounds.iter().find(|round| round.tool == Some(TaskTool::ListTasks)).and_then(Round::result_as);
    let title = || last.result_as::<TaskResult>().map(|result| result.task.title);
    match (last.tool, &command) {
        (Some(TaskTool::ListTasks), Command::Complete { target: Target::Title(wanted) })
        | (Some(TaskTool::ListTasks), Command::Delete { target: Target::Title(wanted) })
        | (Some(TaskTool::ListTasks), Command::Rename { target: Target::Title(wanted), .. }) => {
            act_on_match(&command, wanted, lookup.as_ref().map_or(&[], |list| list.tasks.as_slice()))
        }
        (Some(TaskTool::ListTasks), _) => match &lookup {
            Some(list) => Reply::Text(describe_list(list, last.arguments_as::<ListTasks>().unwrap_or_default())),
            None => Reply::Text("Done.".to_owned()),
        },
        (Some(TaskTool::AddTask), _) => {
            Reply::Text(format!("Added \"{}\" to your tasks.", title().unwrap_or_else(|| "the task".into())))
        }
        (Some(TaskTool::CompleteTask), _) => {
            Reply::Text(format!("Marked \"{}\" as done.", title().unwrap_or_else(|| "the task".into())))
        }
        (Some(TaskTool::UpdateTask), _) => {
            let new_title = title().unwrap_or_else(|| "its new title".into());
            Reply::Text(match old_title(last, lookup.as_ref(), &command) {
                Some(old) if old != new_title => format!("Renamed \"{old}\" to \"{new_title}\"."),
                _ => format!("Updated the task; it is now called \"{new_title}\"."),
            })
        }
        (Some(TaskTool::DeleteTask), _) => Reply::Text(match old_title(last, lookup.as_ref(), &command) {
            Some(title) => format!("Deleted \"{title}\"."),
            None => "Deleted the task.".to_owned(),
        }),
        (None, _) => Reply::Text("Done.".to_owned()),
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
                rounds.push(Round { call, tool: TaskTool::named(&call.name), result });
            }
        }
    }
    rounds
}

fn first_step(command: Command) -> Reply {
    let by_id = |id: uuid::Uuid| TaskRef { task_id: id.to_string(), version: None };
    match command {
        Command::Add { title } => Reply::call(TaskTool::AddTask, AddTask { title, description: None }),
        Command::List { status } => Reply::call(TaskTool::ListTasks, ListTasks { status: Some(status) }),
        Command::Complete { target: Target::Id(id) } => Reply::call(TaskTool::CompleteTask, by_id(id)),
        Command::Delete { target: Target::Id(id) } => Reply::call(TaskTool::DeleteTask, by_id(id)),
        Command::Rename { target: Target::Id(id), new_title } => {
            Reply::call(TaskTool::UpdateTask, rename(id.to_string(), new_title))
        }
        Command::Complete { target: Target::Title(_) }
        | Command::Delete { target: Target::Title(_) }
        | Command::Rename { target: Target::Title(_), .. } => {
            Reply::call(TaskTool::ListTasks, ListTasks { status: Some(ListStatus::All) })
        }
        Command::Unknown => Reply::Text(HELP.to_owned()),
    }
}

fn rename(task_id: String, title: String) -> UpdateTask {
    UpdateTask { task_id, title: Some(title), description: None, version: None }
}

/// Finds the task named `title` among `tasks` (a `list_tasks` result) and calls the action.
fn act_on_match(command: &Command, title: &str, tasks: &[TaskView]) -> Reply {
    let wanted = title.to_lowercase();
    let title_of = |task: &TaskView| task.title.to_lowercase();
    let exact: Vec<&TaskView> = tasks.iter().filter(|task| title_of(task) == wanted).collect();
    let chosen = if exact.is_empty() {
        let partial: Vec<&TaskView> = tasks.iter().filter(|task| title_of(task).contains(&wanted)).collect();
        match partial.as_slice() {
            [one] => Some(*one),
            [] => None,
            several => {
                let names: Vec<String> = several.iter().map(|task| format!("\"{}\"", task.title)).collect();
                return Reply::Text(format!(
                    "Several tasks match \"{title}\": {}. Which one do you mean?",
                    names.join(", ")
                ));
            }
        }
    } else {
        // With duplicates, completing prefers one that is still pending.
        let pending = exact.iter().copied().find(|task| !task.completed);
        match command {
            Command::Complete { .. } => pending.or(exact.first().copied()),
            _ => exact.first().copied(),
        }
    };
    let Some(task) = chosen else {
        return Reply::Text(format!("I couldn't find a task called \"{title}\"."));
    };
    let by_id = TaskRef { task_id: task.id.clone(), version: None };
    match command {
        Command::Complete { .. } => Reply::call(TaskTool::CompleteTask, by_id),
        Command::Delete { .. } => Reply::call(TaskTool::DeleteTask, by_id),
        Command::Rename { new_title, .. } => {
            Reply::call(TaskTool::UpdateTask, rename(task.id.clone(), new_title.clone()))
        }
        Command::Add { .. } | Command::List { .. } | Command::Unknown => Reply::Text(HELP.to_owned()),
    }
}

/// The title a task had before the action: from the lookup list, else as the user wrote it.
fn old_title(round: &Round<'_>, lookup: Option<&TaskListResult>, command: &Command) -> Option<String> {
    let id = round.arguments_as::<TaskRef>().map(|arguments| arguments.task_id);
    let from_list = lookup
        .and_then(|list| list.tasks.iter().find(|task| Some(&task.id) == id.as_ref()))
        .map(|task| task.title.clone());
    from_list.or_else(|| match command {
        Command::Delete { target: Target::Title(title) } | Command::Rename { target: Target::Title(title), .. } => {
            Some(title.clone())
        }
        _ => None,
    })
}

fn describe_list(list: &TaskListResult, arguments: ListTasks) -> String {
    let status = arguments.status.unwrap_or_default();
    let kind = match status {
        ListStatus::Pending => "pending ",
        ListStatus::Completed => "completed ",
        ListStatus::All => "",
    };
    let count = list.count;
    if count == 0 || list.tasks.is_empty() {
        return format!("You have no {kind}tasks.");
    }
    let noun = if count == 1 { "task" } else { "tasks" };
    let items: Vec<String> = list
        .tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let done = status == ListStatus::All && task.completed;
            format!("{}. {}{}", i + 1, task.title, if done { " (done)" } else { "" })
        })
        .collect();
    format!("You have {count} {kind}{noun}: {}", items.join(" "))
}

fn describe_error(failure: &FailedResult) -> String {
    let message = failure.message();
    match failure.code() {
        "TASK_NOT_FOUND" => format!("I couldn't find that task: {message}"),
        "FORBIDDEN" => format!("That task isn't yours to change: {message}"),
        "INVALID_ARGUMENTS" => format!("That didn't work, the request was invalid: {message}"),
        _ => format!("Sorry, that didn't work: {message}"),
    }
}
