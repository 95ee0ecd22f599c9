//! `TaskRepository::list` contract: order, pagination, filters, search.

use parley_kernel::PageRequest;
use parley_tasks::TaskFilter;

use crate::stores::{Stores, at, now, user};
use crate::tasks::{by, edit, page, search, stored, task_at, titles, toggle};

pub async fn task_list_is_newest_first_and_scoped_to_owner(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    for (title, second) in [("second", 2), ("first", 1), ("third", 3)] {
        stores.tasks.create(&task_at(owner, title, at(second)), &by(owner)).await.expect("create");
    }
    stores.tasks.create(&task_at(other, "not mine", at(4)), &by(other)).await.expect("create");

    let listed = stores.tasks.list(owner, &TaskFilter::default(), &page(10)).await.expect("list");

    assert_eq!(titles(&listed.items), ["third", "second", "first"]);
    assert_eq!(listed.total, 3);
    assert_eq!(listed.next_cursor, None);
}

pub async fn task_list_pagination_walk(stores: Stores) {
    let owner = user(&stores).await;
    let mut expected = Vec::new();
    for i in 0..25 {
        // Three tasks share each instant: the id must break the tie.
        let task = task_at(owner, &format!("task {i}"), at(i / 3));
        stores.tasks.create(&task, &by(task.owner)).await.expect("create");
        expected.push(task);
    }
    expected.sort_by_key(|t| std::cmp::Reverse((t.created_at, t.id)));

    let mut seen = Vec::new();
    let mut request = page(7);
    let mut pages = 0;
    loop {
        let listed = stores.tasks.list(owner, &TaskFilter::default(), &request).await.expect("list");
        pages += 1;
        assert_eq!(listed.total, 25, "total ignores the cursor");
        assert!(listed.items.len() <= 7);
        seen.extend(listed.items);
        match listed.next_cursor {
            Some(cursor) => request = PageRequest::new(Some(7), Some(cursor)).expect("limit"),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }

    assert_eq!(pages, 4);
    assert_eq!(seen, expected, "every task once, newest first");
}

pub async fn task_list_completed_filter(stores: Stores) {
    let owner = user(&stores).await;
    let mut done = Vec::new();
    for i in 0..5 {
        let task = stored(&stores, owner, &format!("task {i}")).await;
        if i % 2 == 0 {
            stores.tasks.update(task.id, toggle(), &edit(owner, now())).await.expect("toggle");
            done.push(task.id);
        }
    }
    let filter = |completed| TaskFilter { completed: Some(completed), ..TaskFilter::default() };

    let completed = stores.tasks.list(owner, &filter(true), &page(100)).await.expect("list");
    let pending = stores.tasks.list(owner, &filter(false), &page(100)).await.expect("list");

    assert_eq!(completed.total, 3);
    assert!(completed.items.iter().all(|t| t.completed() && done.contains(&t.id)));
    assert_eq!(pending.total, 2);
    assert!(pending.items.iter().all(|t| !t.completed() && !done.contains(&t.id)));
}

pub async fn task_list_title_search(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    for title in ["École du soir", "Buy MILK", "100% done", "100 percent", "snake_case", "snakeXcase", r"back\slash"] {
        stored(&stores, owner, title).await;
    }
    stored(&stores, other, "buy milk too").await;
    let query = |text: &str| TaskFilter { title_contains: Some(text.to_owned()), ..TaskFilter::default() };

    assert_eq!(titles(&search(&stores, owner, query("ÉCOLE")).await), ["École du soir"]);
    assert_eq!(titles(&search(&stores, owner, query("école")).await), ["École du soir"]);
    assert_eq!(titles(&search(&stores, owner, query("milk")).await), ["Buy MILK"]);
    assert_eq!(titles(&search(&stores, owner, query("0%")).await), ["100% done"]);
    assert_eq!(titles(&search(&stores, owner, query("e_c")).await), ["snake_case"]);
    assert_eq!(titles(&search(&stores, owner, query(r"k\s")).await), [r"back\slash"]);
    assert!(search(&stores, owner, query("%")).await.len() == 1, "% is literal");
    assert!(search(&stores, owner, query("nothing like it")).await.is_empty());

    let done = search(&stores, owner, query("milk")).await;
    stores.tasks.update(done[0].id, toggle(), &edit(owner, now())).await.expect("toggle");
    let both = TaskFilter { completed: Some(false), title_contains: Some("MILK".to_owned()) };
    let pending_milk = stores.tasks.list(owner, &both, &page(10)).await.expect("list");
    assert!(pending_milk.items.is_empty() && pending_milk.total == 0, "filters combine");

    for text in ["ÉCOLE", "milk", "0%", "e_c", r"k\s", "%", "e", "nothing like it"] {
        for completed in [None, Some(true), Some(false)] {
            let filter = TaskFilter { completed, title_contains: Some(text.to_owned()) };
            let listed = stores.tasks.list(owner, &filter, &page(100)).await.expect("list");
            let found = u64::try_from(listed.items.len()).expect("a count");
            assert_eq!(listed.total, found, "the count and the page agree for {text:?}, {completed:?}");
        }
    }
}
