//! `TaskRepository` contract.

use std::sync::Arc;

use parley_kernel::{PageRequest, TaskId, UserId};
use parley_tasks::{
    Attribution, Edit, NewTask, Origin, Priority, Task, TaskChange, TaskDescription, TaskError, TaskFilter, TaskPatch,
    TaskTitle,
};

use crate::stores::{Stores, at, now, user};

pub(crate) fn task_at(owner: UserId, title: &str, created: parley_kernel::Timestamp) -> Task {
    let new = NewTask {
        title: TaskTitle::parse(title).expect("title"),
        description: TaskDescription::parse("some details").expect("description"),
        priority: Priority::High,
        due_at: Some(at(86_400)),
    };
    Task::create(owner, new, created)
}

pub(crate) async fn stored(stores: &Stores, owner: UserId, title: &str) -> Task {
    let task = task_at(owner, title, now());
    stores.tasks.create(&task, &by(task.owner)).await.expect("create task");
    task
}

pub(crate) fn page(limit: i64) -> PageRequest {
    PageRequest::new(Some(limit), None).expect("limit")
}

pub(crate) fn titles(tasks: &[Task]) -> Vec<&str> {
    tasks.iter().map(|t| t.title.as_str()).collect()
}

pub(crate) async fn search(stores: &Stores, owner: UserId, filter: TaskFilter) -> Vec<Task> {
    stores.tasks.list(owner, &filter, &page(100)).await.expect("list").items
}

pub(crate) fn by(owner: UserId) -> Attribution {
    Attribution::user(owner, Origin::Rest)
}

pub(crate) fn edit(owner: UserId, at: parley_kernel::Timestamp) -> Edit {
    Edit { by: by(owner), at, if_version: None }
}

pub(crate) fn toggle() -> TaskChange {
    TaskChange::ToggleCompleted
}

fn complete(done: bool) -> TaskChange {
    TaskChange::Patch(TaskPatch { completed: Some(done), ..TaskPatch::default() })
}

pub async fn task_create_then_get(stores: Stores) {
    let owner = user(&stores).await;
    let task = task_at(owner, "Write the contract", now());

    stores.tasks.create(&task, &by(task.owner)).await.expect("create");
    let got = stores.tasks.get(owner, task.id).await.expect("get");

    assert_eq!(got, task);
}

pub async fn task_get_unknown_or_foreign(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let task = stored(&stores, owner, "Mine").await;

    let unknown = stores.tasks.get(owner, TaskId::new()).await;
    let foreign = stores.tasks.get(other, task.id).await;

    assert!(matches!(unknown, Err(TaskError::NotFound)), "{unknown:?}");
    assert!(matches!(foreign, Err(TaskError::Forbidden)), "{foreign:?}");
}

pub async fn task_update_unknown_or_foreign(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let task = stored(&stores, owner, "Mine").await;

    let unknown = stores.tasks.update(TaskId::new(), toggle(), &edit(owner, now())).await;
    let foreign = stores.tasks.update(task.id, toggle(), &edit(other, now())).await;

    assert!(matches!(unknown, Err(TaskError::NotFound)), "{unknown:?}");
    assert!(matches!(foreign, Err(TaskError::Forbidden)), "{foreign:?}");
    assert_eq!(stores.tasks.get(owner, task.id).await.expect("get"), task, "a refused update changes nothing");
}

pub async fn task_delete_unknown_or_foreign(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let task = stored(&stores, owner, "Mine").await;

    let unknown = stores.tasks.delete(TaskId::new(), &edit(owner, now())).await;
    let foreign = stores.tasks.delete(task.id, &edit(other, now())).await;

    assert!(matches!(unknown, Err(TaskError::NotFound)), "{unknown:?}");
    assert!(matches!(foreign, Err(TaskError::Forbidden)), "{foreign:?}");
    assert_eq!(stores.tasks.get(owner, task.id).await.expect("get"), task, "a refused delete deletes nothing");
}

pub async fn task_update_patch(stores: Stores) {
    let owner = user(&stores).await;
    let task = stored(&stores, owner, "Old title").await;
    let later = now();
    let patch = TaskPatch {
        title: Some(TaskTitle::parse("Nouveau TITRE").expect("title")),
        priority: Some(Priority::Low),
        due_at: Some(None),
        ..TaskPatch::default()
    };

    let updated =
        stores.tasks.update(task.id, TaskChange::Patch(patch.clone()), &edit(owner, later)).await.expect("update");

    assert_eq!(updated, task.clone().apply(TaskChange::Patch(patch), later));
    assert_eq!(updated.description, task.description, "fields not given are kept");
    assert_eq!(stores.tasks.get(owner, task.id).await.expect("get"), updated, "returned as stored");
    let by_new = TaskFilter { title_contains: Some("titre".to_owned()), ..TaskFilter::default() };
    let by_old = TaskFilter { title_contains: Some("old".to_owned()), ..TaskFilter::default() };
    assert_eq!(search(&stores, owner, by_new).await, [updated], "search sees the new title");
    assert!(search(&stores, owner, by_old).await.is_empty(), "and not the old one");
}

pub async fn task_update_completed_keeps_completed_at_consistent(stores: Stores) {
    let owner = user(&stores).await;
    let task = stored(&stores, owner, "Finish").await;
    let (first, second, third) = (at(10), at(20), at(30));

    let done = stores.tasks.update(task.id, complete(true), &edit(owner, first)).await.expect("complete");
    let again = stores.tasks.update(task.id, complete(true), &edit(owner, second)).await.expect("complete again");
    let undone = stores.tasks.update(task.id, complete(false), &edit(owner, third)).await.expect("reopen");

    assert_eq!(done.completed_at, Some(first));
    assert_eq!(again.completed_at, Some(first), "completing twice keeps the first time");
    assert_eq!(again.updated_at, second);
    assert_eq!(undone.completed_at, None);
    assert_eq!(stores.tasks.get(owner, task.id).await.expect("get"), undone);
}

pub async fn task_toggle_sets_and_clears_completed_at(stores: Stores) {
    let owner = user(&stores).await;
    let task = stored(&stores, owner, "Toggle me").await;

    let done = stores.tasks.update(task.id, toggle(), &edit(owner, at(10))).await.expect("toggle");
    let stored_done = stores.tasks.get(owner, task.id).await.expect("get");
    let undone = stores.tasks.update(task.id, toggle(), &edit(owner, at(20))).await.expect("toggle back");
    let stored_undone = stores.tasks.get(owner, task.id).await.expect("get");

    assert_eq!((done.completed(), done.completed_at, done.updated_at), (true, Some(at(10)), at(10)));
    assert_eq!(stored_done, done);
    assert_eq!((undone.completed(), undone.completed_at, undone.updated_at), (false, None, at(20)));
    assert_eq!(stored_undone, undone);
}

pub async fn task_concurrent_toggles_lose_no_update(stores: Stores) {
    let owner = user(&stores).await;
    let task = stored(&stores, owner, "Contended").await;
    let repository = Arc::clone(&stores.tasks);

    let toggles = (0..10).map(|_| {
        let repository = Arc::clone(&repository);
        tokio::spawn(async move { repository.update(task.id, TaskChange::ToggleCompleted, &edit(owner, now())).await })
    });
    let results = futures_util::future::join_all(toggles).await;

    let states: Vec<bool> =
        results.into_iter().map(|joined| joined.expect("join").expect("toggle").completed()).collect();
    assert_eq!(states.iter().filter(|done| **done).count(), 5, "each toggle saw the one before: {states:?}");
    let last = stores.tasks.get(owner, task.id).await.expect("get");
    assert!(!last.completed() && last.completed_at.is_none(), "an even number of toggles: {last:?}");
}

pub async fn task_delete_then_not_found(stores: Stores) {
    let owner = user(&stores).await;
    let task = stored(&stores, owner, "Short-lived").await;
    let kept = stored(&stores, owner, "Kept").await;

    stores.tasks.delete(task.id, &edit(owner, now())).await.expect("delete");

    assert!(matches!(stores.tasks.get(owner, task.id).await, Err(TaskError::NotFound)));
    assert!(matches!(stores.tasks.delete(task.id, &edit(owner, now())).await, Err(TaskError::NotFound)));
    assert!(matches!(stores.tasks.update(task.id, toggle(), &edit(owner, now())).await, Err(TaskError::NotFound)));
    let listed = stores.tasks.list(owner, &TaskFilter::default(), &page(10)).await.expect("list");
    assert_eq!((listed.items, listed.total), (vec![kept], 1));
}
