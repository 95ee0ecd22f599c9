//! Changes the assistant proposed and that wait for the user's approval.

use std::fmt;
use std::str::FromStr;

use parley_kernel::{ConversationId, TaskId, Timestamp, UserId};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Origin, SnapshotError, Task, UnknownWord, restore, snapshot};

/// How long a plan can be approved.
pub const PLAN_LIFETIME: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// Which assistant changes wait for the user's approval (`ASSISTANT_APPROVAL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Approval {
    /// Every change runs at once.
    Never,
    /// Deletions, and every change of a reply past its third, wait.
    #[default]
    Destructive,
    /// Every change waits.
    Always,
}

impl Approval {
    /// Changes a reply may make before the rest waits, under `Destructive`.
    pub const FREE_CHANGES: usize = 3;

    /// Whether a call of the writing tool `name` waits, after the reply already changed `changed` tasks.
    #[must_use]
    pub fn holds(self, name: &str, changed: usize) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::Destructive => name == "delete_task" || changed >= Self::FREE_CHANGES,
        }
    }
}

impl FromStr for Approval {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        match s.trim().to_ascii_lowercase().as_str() {
            "never" => Ok(Self::Never),
            "destructive" => Ok(Self::Destructive),
            "always" => Ok(Self::Always),
            _ => Err(UnknownWord(s.to_owned())),
        }
    }
}

impl fmt::Display for Approval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Never => "never",
            Self::Destructive => "destructive",
            Self::Always => "always",
        })
    }
}

/// One held tool call: what it would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedChange {
    pub tool_call_id: String,
    pub name: String,
    pub arguments: String,
    /// The task as the plan saw it; `None` for a task the call creates.
    pub before: Option<Task>,
    /// The task once changed; `None` for a deletion.
    pub after: Option<Task>,
}

impl PlannedChange {
    /// `Delete "Buy milk"`: the change in words.
    #[must_use]
    pub fn summary(&self) -> String {
        let title = self.before.as_ref().or(self.after.as_ref()).map_or("?", |task| task.title.as_str());
        let verb = match self.name.as_str() {
            "add_task" => "Add",
            "complete_task" => "Complete",
            "update_task" => "Update",
            "delete_task" => "Delete",
            other => other,
        };
        format!("{verb} \"{title}\"")
    }

    /// The task this change is about.
    #[must_use]
    pub fn task_id(&self) -> Option<TaskId> {
        self.before.as_ref().or(self.after.as_ref()).map(|task| task.id)
    }
}

/// Whether a plan still waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanStatus {
    Pending,
    Approved,
    Rejected,
}

impl PlanStatus {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
        }
    }
}

impl FromStr for PlanStatus {
    type Err = UnknownWord;

    fn from_str(s: &str) -> Result<Self, UnknownWord> {
        match s {
            "pending" => Ok(Self::Pending),
            "approved" => Ok(Self::Approved),
            "rejected" => Ok(Self::Rejected),
            _ => Err(UnknownWord(s.to_owned())),
        }
    }
}

/// Changes an assistant reply proposed, applied all together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub id: Uuid,
    pub owner: UserId,
    pub conversation: ConversationId,
    pub origin: Origin,
    pub changes: Vec<PlannedChange>,
    pub status: PlanStatus,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl Plan {
    /// A pending plan made now.
    #[must_use]
    pub fn new(
        owner: UserId,
        conversation: ConversationId,
        origin: Origin,
        changes: Vec<PlannedChange>,
        now: Timestamp,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            owner,
            conversation,
            origin,
            changes,
            status: PlanStatus::Pending,
            created_at: now,
            expires_at: now + PLAN_LIFETIME,
        }
    }
}

/// The user's answer to a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
}

/// Why a plan could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No plan of the caller's has this id.
    #[error("plan not found")]
    NotFound,
    #[error("plan already decided")]
    Decided,
    #[error("plan expired")]
    Expired,
    /// These tasks changed since the plan was made; nothing was applied.
    #[error("tasks changed since the plan")]
    Conflict(Vec<TaskId>),
    #[error(transparent)]
    Store(#[from] parley_kernel::StoreError),
}

/// The planned changes as stored: tool call, arguments, task before and after.
#[must_use]
pub fn changes_to_json(changes: &[PlannedChange]) -> Value {
    Value::Array(
        changes
            .iter()
            .map(|change| {
                json!({
                    "tool_call_id": change.tool_call_id,
                    "name": change.name,
                    "arguments": change.arguments,
                    "before": change.before.as_ref().map(snapshot),
                    "after": change.after.as_ref().map(snapshot),
                })
            })
            .collect(),
    )
}

/// The changes [`changes_to_json`] wrote.
///
/// # Errors
/// `SnapshotError` if the value is not such an array.
pub fn changes_from_stored(value: &Value) -> Result<Vec<PlannedChange>, SnapshotError> {
    let missing = |what: &str| SnapshotError(format!("plan change without {what}"));
    let task = |value: Option<&Value>| match value {
        None | Some(Value::Null) => Ok(None),
        Some(task) => restore(task).map(Some),
    };
    value
        .as_array()
        .ok_or_else(|| missing("a list"))?
        .iter()
        .map(|change| {
            let text =
                |name: &str| change.get(name).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| missing(name));
            Ok(PlannedChange {
                tool_call_id: text("tool_call_id")?,
                name: text("name")?,
                arguments: text("arguments")?,
                before: task(change.get("before"))?,
                after: task(change.get("after"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destructive_holds_deletions_and_changes_past_the_third() {
        let approval = Approval::default();
        assert!(approval.holds("delete_task", 0));
        assert!(!approval.holds("add_task", 2));
        assert!(approval.holds("add_task", 3));
        assert!(!Approval::Never.holds("delete_task", 10));
        assert!(Approval::Always.holds("add_task", 0));
        assert_eq!("ALWAYS".parse::<Approval>().ok(), Some(Approval::Always));
        assert!("sometimes".parse::<Approval>().is_err());
    }
}
