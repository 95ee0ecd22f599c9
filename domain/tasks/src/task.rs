//! The task aggregate and the changes it can undergo.

use parley_kernel::{TaskId, Timestamp, UserId};

use crate::{Priority, TaskDescription, TaskTitle};

/// One item of a user's to-do list. Completion is `completed_at` alone, so
/// "completed" and "completed at" can never disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: TaskId,
    pub owner: UserId,
    pub title: TaskTitle,
    pub description: TaskDescription,
    pub priority: Priority,
    pub due_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    /// 1 when created, one more on every change.
    pub version: u32,
}

/// What creating a task needs; the owner is always the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTask {
    pub title: TaskTitle,
    pub description: TaskDescription,
    pub priority: Priority,
    pub due_at: Option<Timestamp>,
}

/// Fields to replace; `None` leaves a field as it is. `due_at: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskPatch {
    pub title: Option<TaskTitle>,
    pub description: Option<TaskDescription>,
    pub priority: Option<Priority>,
    pub due_at: Option<Option<Timestamp>>,
    pub completed: Option<bool>,
}

/// A change to an existing task, applied atomically by the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskChange {
    Patch(TaskPatch),
    ToggleCompleted,
}

impl Task {
    /// A task as created now by `owner`.
    #[must_use]
    pub fn create(owner: UserId, new: NewTask, now: Timestamp) -> Self {
        Self {
            id: TaskId::new(),
            owner,
            title: new.title,
            description: new.description,
            priority: new.priority,
            due_at: new.due_at,
            created_at: now,
            updated_at: now,
            completed_at: None,
            version: 1,
        }
    }

    #[must_use]
    pub fn completed(&self) -> bool {
        self.completed_at.is_some()
    }

    /// This task after `change`, made at `now`. Completing an already
    /// completed task keeps its original `completed_at`.
    #[must_use]
    pub fn apply(mut self, change: TaskChange, now: Timestamp) -> Self {
        let completed = match change {
            TaskChange::ToggleCompleted => Some(!self.completed()),
            TaskChange::Patch(patch) => {
                if let Some(title) = patch.title {
                    self.title = title;
                }
                if let Some(description) = patch.description {
                    self.description = description;
                }
                if let Some(priority) = patch.priority {
                    self.priority = priority;
                }
                if let Some(due_at) = patch.due_at {
                    self.due_at = due_at;
                }
                patch.completed
            }
        };
        match completed {
            Some(true) if self.completed_at.is_none() => self.completed_at = Some(now),
            Some(false) => self.completed_at = None,
            _ => {}
        }
        self.updated_at = now;
        self.version += 1;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    fn task() -> Task {
        let new = NewTask {
            title: TaskTitle::parse("Write tests").unwrap_or_else(|_| unreachable!()),
            description: TaskDescription::default(),
            priority: Priority::Medium,
            due_at: None,
        };
        Task::create(UserId::new(), new, at(1))
    }

    #[test]
    fn toggle_sets_then_clears_completed_at() {
        let done = task().apply(TaskChange::ToggleCompleted, at(2));
        assert_eq!(done.completed_at, Some(at(2)));
        assert_eq!((done.updated_at, done.version), (at(2), 2));
        let undone = done.apply(TaskChange::ToggleCompleted, at(3));
        assert_eq!(undone.completed_at, None);
        assert!(!undone.completed());
    }

    #[test]
    fn completing_twice_keeps_first_completion_time() {
        let complete = || TaskChange::Patch(TaskPatch { completed: Some(true), ..TaskPatch::default() });
        let done = task().apply(complete(), at(2)).apply(complete(), at(5));
        assert_eq!(done.completed_at, Some(at(2)));
        assert_eq!(done.updated_at, at(5));
    }

    #[test]
    fn patch_replaces_only_given_fields() {
        let original = Task { due_at: Some(at(9)), ..task() };
        let patch = TaskPatch { priority: Some(Priority::High), due_at: Some(None), ..TaskPatch::default() };
        let changed = original.clone().apply(TaskChange::Patch(patch), at(2));
        assert_eq!(changed.priority, Priority::High);
        assert_eq!(changed.due_at, None);
        assert_eq!(changed.title, original.title);
        assert_eq!(changed.completed_at, None);
    }
}
