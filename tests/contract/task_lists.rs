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

/// The titles `q` finds among a fixed set, sorted, on the store under test.
async fn found(stores: &Stores, owner: parley_kernel::UserId, q: &str) -> Vec<String> {
    let filter = TaskFilter { title_contains: Some(q.to_owned()), ..TaskFilter::default() };
    let listed = stores.tasks.list(owner, &filter, &page(100)).await.expect("list");
    assert_eq!(listed.total, u64::try_from(listed.items.len()).expect("a count"), "count and page agree for {q:?}");
    let mut titles: Vec<String> = listed.items.iter().map(|t| t.title.as_str().to_owned()).collect();
    titles.sort();
    titles
}

/// The same answers on every store (decision 0008): the folded title holds the
/// folded query; one, two and three or more characters; wildcards literal;
/// non-ASCII lower-cased, the sigmas merged; nothing else folded.
pub async fn task_list_title_search_folds_every_script_and_any_length(stores: Stores) {
    let (owner, other) = (user(&stores).await, user(&stores).await);
    let titles = [
        "ΟΔΟΣ ΑΘΗΝΑΣ",
        "Straße",
        "İstanbul trip",
        "Привет МИР",
        "naïve café",
        "a_b",
        "axb",
        "100%",
        "1000",
        r"C:\temp",
        "say \"hi\"",
        "emoji 🎉 party",
        "XY",
    ];
    for title in titles {
        stored(&stores, owner, title).await;
    }
    stored(&stores, other, "ΟΔΟΣ someone else's").await;
    let q = async |q: &str| found(&stores, owner, q).await;

    // One and two characters: no trigram, the owner's rows are scanned.
    assert_eq!(q("x").await, ["XY", "axb"]);
    assert_eq!(q("Xy").await, ["XY"]);
    assert_eq!(q("_").await, ["a_b"], "_ is literal");
    assert_eq!(q("%").await, ["100%"], "% is literal");
    assert_eq!(q(r"\").await, [r"C:\temp"], r"\ is literal");
    assert_eq!(q("ς").await, ["ΟΔΟΣ ΑΘΗΝΑΣ"], "ς, σ and Σ are one letter");
    assert_eq!(q("🎉").await, ["emoji 🎉 party"]);
    // Three characters and more: the trigram index finds the candidates.
    assert_eq!(q("οδοσ").await, ["ΟΔΟΣ ΑΘΗΝΑΣ"], "a final sigma in the title matches σ");
    assert_eq!(q("ΟΔΟΣ Α").await, ["ΟΔΟΣ ΑΘΗΝΑΣ"]);
    assert_eq!(q("νας").await, ["ΟΔΟΣ ΑΘΗΝΑΣ"]);
    assert_eq!(q("ΣΑΘ").await, [] as [&str; 0], "a space is a character like any other");
    assert_eq!(q("привет мир").await, ["Привет МИР"]);
    assert_eq!(q("NAÏVE").await, ["naïve café"]);
    assert_eq!(q("naive").await, [] as [&str; 0], "accents are not removed");
    assert_eq!(q("STRASSE").await, [] as [&str; 0], "ß is not expanded");
    assert_eq!(q("straße").await, ["Straße"]);
    assert_eq!(q("i\u{307}stanbul").await, ["İstanbul trip"], "İ lower-cases to i and a combining dot");
    assert_eq!(q("a_b").await, ["a_b"], "_ does not match x");
    assert_eq!(q("00%").await, ["100%"], "% does not match 0");
    assert_eq!(q(r"c:\te").await, [r"C:\temp"]);
    assert_eq!(q("y \"h").await, ["say \"hi\""], "a quote is literal");
    assert_eq!(q("%%%").await, [] as [&str; 0]);
    assert_eq!(q("y 🎉 p").await, [] as [&str; 0]);
    assert_eq!(q("ji 🎉 pa").await, ["emoji 🎉 party"]);

    // The index follows every write: a renamed task is found by its new title
    // only, a deleted one no more.
    let renamed =
        search(&stores, owner, TaskFilter { title_contains: Some("ΘΗΝ".into()), ..TaskFilter::default() }).await;
    let patch = parley_tasks::TaskPatch {
        title: Some(parley_tasks::TaskTitle::parse("Λίμνη").expect("title")),
        ..parley_tasks::TaskPatch::default()
    };
    stores
        .tasks
        .update(renamed[0].id, parley_tasks::TaskChange::Patch(patch), &edit(owner, now()))
        .await
        .expect("rename");
    assert_eq!(q("αθην").await, [] as [&str; 0]);
    assert_eq!(q("ΛΊΜΝ").await, ["Λίμνη"]);
    let gone = search(&stores, owner, TaskFilter { title_contains: Some("🎉".into()), ..TaskFilter::default() }).await;
    stores.tasks.delete(gone[0].id, &edit(owner, now())).await.expect("delete");
    assert_eq!(q("ji 🎉 pa").await, [] as [&str; 0]);
    assert_eq!(q("🎉").await, [] as [&str; 0]);
    assert_eq!(found(&stores, other, "οδοσ").await, ["ΟΔΟΣ someone else's"], "each owner sees their own");
}

/// Past the first page a search pages like any list: the same rows, once each.
pub async fn task_list_title_search_pages(stores: Stores) {
    let owner = user(&stores).await;
    for i in 0..30 {
        stores.tasks.create(&task_at(owner, &format!("Report {i}"), at(i)), &by(owner)).await.expect("create");
        stores.tasks.create(&task_at(owner, &format!("other {i}"), at(i)), &by(owner)).await.expect("create");
    }
    for q in ["REPORT", "r"] {
        let filter = TaskFilter { title_contains: Some(q.to_owned()), ..TaskFilter::default() };
        let first = stores.tasks.list(owner, &filter, &page(20)).await.expect("list");
        let cursor = first.next_cursor.expect("a second page");
        let second = stores.tasks.list(owner, &filter, &PageRequest::new(Some(20), Some(cursor)).expect("limit")).await;
        let second = second.expect("list");
        let expected = if q == "r" { 60 } else { 30 };
        assert_eq!(first.total, expected);
        let mut seen: Vec<_> = first.items.iter().chain(&second.items).map(|t| t.id).collect();
        assert_eq!(seen.len(), if q == "r" { 40 } else { 30 });
        seen.dedup();
        assert_eq!(seen.len(), if q == "r" { 40 } else { 30 }, "no row twice");
    }
}
