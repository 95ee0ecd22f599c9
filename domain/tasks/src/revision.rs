//! Who changed a task, how, and from where: the revisions behind a task's
//! history and behind undoing an assistant's tool call.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use parley_kernel::{ConversationId, TaskId, Timestamp, UserId};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Task, TaskDescription, TaskTitle};

macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),* }

        impl $name {
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                match s { $($text => Ok(Self::$variant),)* _ => Err(UnknownWord(s.to_owned())) }
            }
        }
    };
}

/// A stored word that names no variant (a corrupt row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value '{0}'")]
pub struct UnknownWord(pub(crate) String);

words!(
    /// What a change did to a task.
    Action { Created = "created", Updated = "updated", Completed = "completed", Reopened = "reopened",
             Deleted = "deleted", Restored = "restored" }
);

words!(
    /// Who made a change: the user themselves, or their assistant on their behalf.
    ActorKind { User = "user", Assistant = "assistant" }
);

words!(
    /// Which door a change came through.
    Origin { Rest = "rest", Chat = "chat", Chatkit = "chatkit", ChatkitProtocol = "chatkit_protocol", Room = "room" }
);

/// Who made a change and from where. A change is always made for the task's
/// owner: by them, or by their assistant in one of their conversations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribution {
    pub actor: ActorKind,
    pub user: UserId,
    pub origin: Origin,
    pub conversation: Option<ConversationId>,
    pub tool_call: Option<String>,
}

impl Attribution {
    /// The user, directly.
    #[must_use]
    pub const fn user(user: UserId, origin: Origin) -> Self {
        Self { actor: ActorKind::User, user, origin, conversation: None, tool_call: None }
    }

    /// The user's assistant, running `tool_call` in `conversation`.
    #[must_use]
    pub const fn assistant(user: UserId, origin: Origin, conversation: ConversationId, tool_call: String) -> Self {
        Self { actor: ActorKind::Assistant, user, origin, conversation: Some(conversation), tool_call: Some(tool_call) }
    }
}

/// One recorded change of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub id: Uuid,
    pub task_id: TaskId,
    /// The task's version after the change (a deletion counts as a change).
    pub version: u32,
    pub action: Action,
    /// Each changed field: `[before, after]`.
    pub changes: BTreeMap<String, [Value; 2]>,
    pub by: Attribution,
    /// The whole task before the change; `None` when it did not exist. What
    /// an undo restores.
    pub before: Option<Value>,
    pub created_at: Timestamp,
}

impl Revision {
    /// The revision of a change from `before` to `after` (`None`: absent),
    /// named `action`, or inferred from the two when `None`.
    #[must_use]
    pub fn record(
        action: Option<Action>,
        before: Option<&Task>,
        after: Option<&Task>,
        by: &Attribution,
        now: Timestamp,
    ) -> Self {
        let old = before.map(fields).unwrap_or_default();
        let new = after.map(fields).unwrap_or_default();
        let mut changes = BTreeMap::new();
        for name in FIELDS {
            let was = old.get(name).cloned().unwrap_or(Value::Null);
            let is = new.get(name).cloned().unwrap_or(Value::Null);
            if was != is {
                changes.insert((*name).to_owned(), [was, is]);
            }
        }
        let action = action.unwrap_or_else(|| match (before, after) {
            (None, _) => Action::Created,
            (Some(_), None) => Action::Deleted,
            (Some(_), Some(_)) if changes.len() == 1 && changes.contains_key("completed") => {
                if after.is_some_and(Task::completed) { Action::Completed } else { Action::Reopened }
            }
            (Some(_), Some(_)) => Action::Updated,
        });
        let version = after.map_or_else(|| before.map_or(1, |task| task.version + 1), |task| task.version);
        let task_id = after.or(before).map(|task| task.id).unwrap_or_default();
        Self {
            id: Uuid::now_v7(),
            task_id,
            version,
            action,
            changes,
            by: by.clone(),
            before: before.map(snapshot),
            created_at: now,
        }
    }
}

/// `changes` as stored and shown: `{"<field>": [before, after]}`.
#[must_use]
pub fn changes_json(changes: &BTreeMap<String, [Value; 2]>) -> Value {
    Value::Object(changes.iter().map(|(field, [was, is])| (field.clone(), json!([was, is]))).collect())
}

/// The changes [`changes_json`] wrote.
///
/// # Errors
/// `SnapshotError` if the value is not such an object.
pub fn changes_from_json(value: &Value) -> Result<BTreeMap<String, [Value; 2]>, SnapshotError> {
    let object = value.as_object().ok_or_else(|| SnapshotError("changes is not an object".to_owned()))?;
    object
        .iter()
        .map(|(field, pair)| match pair.as_array().map(Vec::as_slice) {
            Some([was, is]) => Ok((field.clone(), [was.clone(), is.clone()])),
            _ => Err(SnapshotError(format!("change of {field} is not [before, after]"))),
        })
        .collect()
}

const FIELDS: &[&str] = &["title", "description", "priority", "due_at", "completed"];

fn time(at: Timestamp) -> Value {
    Value::String(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// The fields a revision reports, as the API shows them.
fn fields(task: &Task) -> BTreeMap<&'static str, Value> {
    BTreeMap::from([
        ("title", Value::String(task.title.as_str().to_owned())),
        ("description", Value::String(task.description.as_str().to_owned())),
        ("priority", Value::String(task.priority.as_str().to_owned())),
        ("due_at", task.due_at.map_or(Value::Null, time)),
        ("completed", Value::Bool(task.completed())),
    ])
}

/// The whole task as JSON, for [`restore`].
#[must_use]
pub fn snapshot(task: &Task) -> Value {
    json!({
        "id": task.id.to_string(),
        "owner": task.owner.to_string(),
        "title": task.title.as_str(),
        "description": task.description.as_str(),
        "priority": task.priority.as_str(),
        "due_at": task.due_at.map(time),
        "created_at": time(task.created_at),
        "updated_at": time(task.updated_at),
        "completed_at": task.completed_at.map(time),
        "version": task.version,
    })
}

/// A snapshot that does not read back as a task (a corrupt row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("task snapshot unreadable: {0}")]
pub struct SnapshotError(pub(crate) String);

/// The task a [`snapshot`] was taken of.
///
/// # Errors
/// `SnapshotError` if a field is missing or invalid.
pub fn restore(value: &Value) -> Result<Task, SnapshotError> {
    let text =
        |name: &str| value.get(name).and_then(Value::as_str).ok_or_else(|| SnapshotError(format!("{name} missing")));
    let at = |name: &str| -> Result<Option<Timestamp>, SnapshotError> {
        match value.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&chrono::Utc)))
                .map_err(|e| SnapshotError(format!("{name}: {e}"))),
            Some(_) => Err(SnapshotError(format!("{name} is not a time"))),
        }
    };
    let required = |name: &str| at(name)?.ok_or_else(|| SnapshotError(format!("{name} missing")));
    let bad = |e: &dyn fmt::Display| SnapshotError(e.to_string());
    Ok(Task {
        id: text("id")?.parse().map_err(|e| bad(&e))?,
        owner: text("owner")?.parse().map_err(|e| bad(&e))?,
        title: TaskTitle::parse(text("title")?).map_err(|e| bad(&e))?,
        description: TaskDescription::parse(text("description")?).map_err(|e| bad(&e))?,
        priority: text("priority")?.parse().map_err(|e| bad(&e))?,
        due_at: at("due_at")?,
        created_at: required("created_at")?,
        updated_at: required("updated_at")?,
        completed_at: at("completed_at")?,
        version: value
            .get("version")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| SnapshotError("version missing".to_owned()))?,
    })
}

/// Why a tool call cannot be undone.
#[derive(Debug, thiserror::Error)]
pub enum RevertError {
    /// No change of the caller's was made by this tool call.
    #[error("no change was made by this tool call")]
    NotFound,
    #[error("this tool call was already reverted")]
    AlreadyReverted,
    /// A later change touched these tasks; nothing was changed.
    #[error("tasks changed since the tool call")]
    Conflict(Vec<TaskId>),
    #[error(transparent)]
    Store(#[from] parley_kernel::StoreError),
}

/// What undoing a tool call does to one task: bring it back to `target`
/// (`None`: the call created it, so it goes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertStep {
    pub task_id: TaskId,
    pub target: Option<Task>,
}

/// The steps that undo a tool call's `revisions` (oldest first), given the
/// latest recorded version of each task they touched. A task whose latest
/// version is not the call's own last one was changed since: a conflict.
///
/// # Errors
/// `Conflict` naming every such task; `NotFound` when there are no revisions.
pub fn revert_steps(
    revisions: &[Revision],
    latest_version: impl Fn(TaskId) -> Option<u32>,
) -> Result<Vec<RevertStep>, RevertError> {
    if revisions.is_empty() {
        return Err(RevertError::NotFound);
    }
    // Per task, in the order the call first touched them: its first revision's `before`, its last version.
    let mut order: Vec<TaskId> = Vec::new();
    let mut first_before: BTreeMap<TaskId, Option<Value>> = BTreeMap::new();
    let mut last_version: BTreeMap<TaskId, u32> = BTreeMap::new();
    for revision in revisions {
        if let std::collections::btree_map::Entry::Vacant(entry) = first_before.entry(revision.task_id) {
            order.push(revision.task_id);
            entry.insert(revision.before.clone());
        }
        let last = last_version.entry(revision.task_id).or_insert(revision.version);
        *last = (*last).max(revision.version);
    }
    let conflicts: Vec<TaskId> =
        order.iter().copied().filter(|id| latest_version(*id) != last_version.get(id).copied()).collect();
    if !conflicts.is_empty() {
        return Err(RevertError::Conflict(conflicts));
    }
    order
        .into_iter()
        .rev()
        .map(|task_id| {
            let target = match first_before.remove(&task_id).flatten() {
                Some(value) => Some(restore(&value).map_err(parley_kernel::StoreError::unexpected)?),
                None => None,
            };
            Ok(RevertStep { task_id, target })
        })
        .collect()
}

/// The task after undoing to `target`, replacing `current` (the task now,
/// `None` if deleted) whose latest version is `latest`; with the action the
/// undo's own revision records.
#[must_use]
pub fn undo(target: Option<Task>, current: Option<&Task>, latest: u32, now: Timestamp) -> (Option<Task>, Action) {
    match (target, current) {
        (None, _) => (None, Action::Deleted),
        (Some(task), None) => (Some(Task { version: latest + 1, updated_at: now, ..task }), Action::Restored),
        (Some(task), Some(current)) => {
            let after = Task { version: latest + 1, updated_at: now, created_at: current.created_at, ..task };
            let action = match (current.completed(), after.completed()) {
                (false, true) => Action::Completed,
                (true, false) => Action::Reopened,
                _ => Action::Updated,
            };
            (Some(after), action)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewTask, Priority, TaskChange, TaskPatch};

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    fn task() -> Task {
        let new = NewTask {
            title: TaskTitle::parse("Write tests").unwrap_or_else(|_| unreachable!()),
            description: TaskDescription::default(),
            priority: Priority::Medium,
            due_at: Some(at(50)),
        };
        Task::create(UserId::new(), new, at(1))
    }

    fn by(task: &Task) -> Attribution {
        Attribution::user(task.owner, Origin::Rest)
    }

    #[test]
    fn a_snapshot_restores_the_same_task() {
        let task = task().apply(TaskChange::ToggleCompleted, at(3));
        assert_eq!(restore(&snapshot(&task)), Ok(task));
    }

    #[test]
    fn revisions_name_only_the_changed_fields_and_infer_the_action() {
        let before = task();
        let created = Revision::record(None, None, Some(&before), &by(&before), at(1));
        assert_eq!((created.action, created.version), (Action::Created, 1));
        assert_eq!(created.changes["title"], [Value::Null, json!("Write tests")]);
        assert_eq!(created.before, None);

        let done = before.clone().apply(TaskChange::ToggleCompleted, at(2));
        let completed = Revision::record(None, Some(&before), Some(&done), &by(&before), at(2));
        assert_eq!((completed.action, completed.version), (Action::Completed, 2));
        assert_eq!(completed.changes.keys().collect::<Vec<_>>(), ["completed"]);

        let patch = TaskPatch { title: TaskTitle::parse("Ship").ok(), ..TaskPatch::default() };
        let renamed = done.clone().apply(TaskChange::Patch(patch), at(3));
        let updated = Revision::record(None, Some(&done), Some(&renamed), &by(&done), at(3));
        assert_eq!(updated.action, Action::Updated);
        assert_eq!(updated.changes["title"], [json!("Write tests"), json!("Ship")]);

        let deleted = Revision::record(None, Some(&renamed), None, &by(&renamed), at(4));
        assert_eq!((deleted.action, deleted.version), (Action::Deleted, 4));
        assert_eq!(deleted.changes["completed"], [json!(true), Value::Null]);
    }

    #[test]
    fn reverting_is_refused_when_a_later_change_touched_a_task() {
        let before = task();
        let after = before.clone().apply(TaskChange::ToggleCompleted, at(2));
        let revision = Revision::record(None, Some(&before), Some(&after), &by(&before), at(2));
        let steps = revert_steps(std::slice::from_ref(&revision), |_| Some(2));
        assert!(matches!(steps.as_deref(), Ok([RevertStep { target: Some(t), .. }]) if *t == before));
        let later = revert_steps(std::slice::from_ref(&revision), |_| Some(3));
        assert!(matches!(later, Err(RevertError::Conflict(ids)) if ids == [before.id]));
        assert!(matches!(revert_steps(&[], |_| None), Err(RevertError::NotFound)));
    }

    #[test]
    fn undoing_a_deletion_restores_the_task_at_the_next_version() {
        let gone = task();
        let (restored, action) = undo(Some(gone.clone()), None, 2, at(9));
        assert_eq!(action, Action::Restored);
        assert!(restored.is_some_and(|t| t.id == gone.id && t.version == 3 && t.title == gone.title));
    }
}
