//! A user's to-do list. The assistant's tools call these same use cases.

use std::sync::Arc;

use parley_kernel::{Clock, Page, PageRequest, StoreError, TaskId, UserId};
use parley_tasks::{NewTask, Task, TaskChange, TaskError, TaskFilter, TaskPatch, TaskRepository};

pub struct TaskService {
    tasks: Arc<dyn TaskRepository>,
    clock: Arc<dyn Clock>,
}

impl TaskService {
    pub fn new(tasks: Arc<dyn TaskRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { tasks, clock }
    }

    /// # Errors
    /// A store failure.
    #[tracing::instrument(skip_all, fields(owner = %owner))]
    pub async fn create(&self, owner: UserId, new: NewTask) -> Result<Task, StoreError> {
        let task = Task::create(owner, new, self.clock.now());
        self.tasks.create(&task).await?;
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

    /// Replaces the fields the patch gives.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %owner, task = %id))]
    pub async fn update(&self, owner: UserId, id: TaskId, patch: TaskPatch) -> Result<Task, TaskError> {
        self.tasks.update(owner, id, TaskChange::Patch(patch), self.clock.now()).await
    }

    /// Flips completion, setting or clearing `completed_at`.
    ///
    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %owner, task = %id))]
    pub async fn toggle(&self, owner: UserId, id: TaskId) -> Result<Task, TaskError> {
        self.tasks.update(owner, id, TaskChange::ToggleCompleted, self.clock.now()).await
    }

    /// # Errors
    /// `NotFound`, `Forbidden`, or a store failure.
    #[tracing::instrument(skip_all, fields(owner = %owner, task = %id))]
    pub async fn delete(&self, owner: UserId, id: TaskId) -> Result<(), TaskError> {
        self.tasks.delete(owner, id).await
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
            .withf(move |t| t.owner == owner && t.created_at.timestamp() == 1_700_000_000)
            .returning(|_| Ok(()));
        let service = TaskService::new(Arc::new(repo), fixed_clock());
        let new = NewTask {
            title: TaskTitle::parse("Buy milk").unwrap_or_else(|_| unreachable!()),
            description: TaskDescription::default(),
            priority: Priority::High,
            due_at: None,
        };
        let task = service.create(owner, new).await;
        assert!(task.is_ok_and(|t| t.owner == owner && !t.completed() && t.priority == Priority::High));
    }

    #[tokio::test]
    async fn toggle_is_one_atomic_change_in_the_repository() {
        let owner = UserId::new();
        let id = TaskId::new();
        let mut repo = MockTaskRepository::new();
        repo.expect_update()
            .withf(move |o, i, change, _| *o == owner && *i == id && *change == TaskChange::ToggleCompleted)
            .times(1)
            .returning(|_, _, _, _| Err(TaskError::Forbidden));
        let service = TaskService::new(Arc::new(repo), fixed_clock());
        assert!(matches!(service.toggle(owner, id).await, Err(TaskError::Forbidden)));
    }
}
