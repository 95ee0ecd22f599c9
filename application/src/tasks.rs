//! A user's to-do list. The assistant's tools call these same use cases.

use std::sync::Arc;

use parley_kernel::{Clock, Page, PageRequest, StoreError, TaskId, UserId};
use parley_tasks::{
    Attribution, Decision, Edit, NewTask, Origin, Plan, PlanError, RevertError, Revision, Task, TaskChange, TaskError,
    TaskFilter, TaskPatch, TaskRepository,
};

pub struct TaskService {
    tasks: Arc<dyn TaskRepository>,
    clock: Arc<dyn Clock>,
}

impl TaskService {
    pub fn new(tasks: Arc<dyn TaskRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { tasks, clock }
    }

    fn edit(&self, by: &Attribution, if_version: Option<u32>) -> Edit {
        Edit { by: by.clone(), at: self.clock.now(), if_version }
    }

    /// # Errors
    /// A store failure.
    #[tracing::instrument(skip_all, fields(owner = %by.user))]
    pub async fn create(&self, by: &Attribution, new: NewTask) -> Result<Task, StoreError> {
        let task = Task::create(by.user, new, self.clock.now());
        self.tasks.create(&task, by).await?;
        Ok(task)
    }

    /// # Errors
    /// A store failure.
    pub async fn list(&self, owner: UserId, filter: &TaskFilter, page: &PageRequest) -> Result<Page<Task>, StoreError> {
        self.tasks.list(owner, filter, page).await
    }

    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    pub async fn get(&self, owner: UserId, id: TaskId) -> Result<Task, TaskError> {
        self.tasks.get(owner, id).await
    }

    /// Replaces the fields the patch gives, if the task is still at `if_version` (when given).
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Stale`, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %by.user, task = %id))]
    pub async fn update(
        &self,
        by: &Attribution,
        id: TaskId,
        patch: TaskPatch,
        if_version: Option<u32>,
    ) -> Result<Task, TaskError> {
        self.tasks.update(id, TaskChange::Patch(patch), &self.edit(by, if_version)).await
    }

    /// Flips completion, setting or clearing `completed_at`.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Stale`, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %by.user, task = %id))]
    pub async fn toggle(&self, by: &Attribution, id: TaskId, if_version: Option<u32>) -> Result<Task, TaskError> {
        self.tasks.update(id, TaskChange::ToggleCompleted, &self.edit(by, if_version)).await
    }

    /// Deletes the task; returns it as it was.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, `Stale`, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %by.user, task = %id))]
    pub async fn delete(&self, by: &Attribution, id: TaskId, if_version: Option<u32>) -> Result<Task, TaskError> {
        self.tasks.delete(id, &self.edit(by, if_version)).await
    }

    /// The task's history, newest first, also once it is deleted.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    pub async fn revisions(&self, owner: UserId, id: TaskId, page: &PageRequest) -> Result<Page<Revision>, TaskError> {
        self.tasks.revisions(owner, id, page).await
    }

    /// Undoes everything the owner's assistant changed in `tool_call`, as the owner.
    ///
    /// # Errors
    /// `NotFound`, `AlreadyReverted`, `Conflict`, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %owner))]
    pub async fn revert(&self, owner: UserId, tool_call: &str, origin: Origin) -> Result<Vec<TaskId>, RevertError> {
        self.tasks.revert(tool_call, &self.edit(&Attribution::user(owner, origin), None)).await
    }

    /// Stores a plan of changes waiting for the owner's approval.
    ///
    /// # Errors
    /// A store failure.
    pub async fn propose(&self, plan: &Plan) -> Result<(), StoreError> {
        self.tasks.save_plan(plan).await
    }

    /// Approves (applies every change, or none) or rejects the owner's plan.
    ///
    /// # Errors
    /// `NotFound`, `Decided`, `Expired`, `Conflict`, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %owner, plan = %id))]
    pub async fn decide(&self, owner: UserId, id: uuid::Uuid, decision: Decision) -> Result<Plan, PlanError> {
        self.tasks.decide_plan(owner, id, decision, self.clock.now()).await
    }

    /// The time now, as the service sees it.
    #[must_use]
    pub fn now(&self) -> parley_kernel::Timestamp {
        self.clock.now()
    }

    /// Which of `tool_calls` the owner already reverted.
    ///
    /// # Errors
    /// A store failure.
    pub async fn reverted(&self, owner: UserId, tool_calls: &[String]) -> Result<Vec<String>, StoreError> {
        if tool_calls.is_empty() {
            return Ok(Vec::new());
        }
        self.tasks.reverted(owner, tool_calls).await
    }
}

#[cfg(test)]
mod tests {
    use parley_kernel::MockClock;
    use parley_tasks::{MockTaskRepository, Priority, TaskDescription, TaskTitle};

    use super::*;

    fn fixed_clock() -> Arc<MockClock> {
        let mut clock = MockClock::new();
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        clock.expect_now().return_const(now);
        Arc::new(clock)
    }

    #[tokio::test]
    async fn create_stamps_owner_and_time() {
        let owner = UserId::new();
        let mut repo = MockTaskRepository::new();
        repo.expect_create()
            .withf(move |t, by| t.owner == owner && by.user == owner && t.created_at.timestamp() == 1_700_000_000)
            .returning(|_, _| Ok(()));
        let service = TaskService::new(Arc::new(repo), fixed_clock());
        let new = NewTask {
            title: TaskTitle::parse("Buy milk").unwrap_or_else(|_| unreachable!()),
            description: TaskDescription::default(),
            priority: Priority::High,
            due_at: None,
        };
        let task = service.create(&Attribution::user(owner, Origin::Rest), new).await;
        assert!(task.is_ok_and(|t| t.owner == owner && !t.completed() && t.priority == Priority::High));
    }

    #[tokio::test]
    async fn toggle_is_one_atomic_change_in_the_repository() {
        let owner = UserId::new();
        let id = TaskId::new();
        let mut repo = MockTaskRepository::new();
        repo.expect_update()
            .withf(move |i, change, edit| {
                edit.by.user == owner
                    && *i == id
                    && *change == TaskChange::ToggleCompleted
                    && edit.if_version == Some(3)
            })
            .times(1)
            .returning(|_, _, _| Err(TaskError::Forbidden));
        let service = TaskService::new(Arc::new(repo), fixed_clock());
        let by = Attribution::user(owner, Origin::Rest);
        assert!(matches!(service.toggle(&by, id, Some(3)).await, Err(TaskError::Forbidden)));
    }
}
