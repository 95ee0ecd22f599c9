//! Tasks domain: a user's to-do items, their rules, and the repository port.
#![doc = include_str!("../README.md")]

mod plan;
mod ports;
mod revision;
mod search;
mod task;
mod values;

pub use plan::{
    Approval, Decision, PLAN_LIFETIME, Plan, PlanError, PlanStatus, PlannedChange, changes_from_stored, changes_to_json,
};
pub use ports::{Edit, TaskError, TaskFilter, TaskRepository};
pub use revision::{
    Action, ActorKind, Attribution, Origin, RevertError, RevertStep, Revision, SnapshotError, UnknownWord,
    changes_from_json, changes_json, restore, revert_steps, snapshot, undo,
};
pub use search::{fold_for_search, has_trigram};
pub use task::{NewTask, Task, TaskChange, TaskPatch};
pub use values::{Priority, PriorityError, TaskDescription, TaskDescriptionError, TaskTitle, TaskTitleError};

#[cfg(feature = "mock")]
pub use ports::MockTaskRepository;
