//! Repository contract suite: one set of checks, derived from the `# Errors`
//! rustdoc of every repository port, run against every storage adapter.
//!
//! Each check is an `async fn(Stores)` in `users`, `tasks`,
//! `conversations` or `sessions`; `suite!` turns each into one `#[tokio::test]` per store,
//! each on a fresh database (`sqlite::*` and `postgres::*`).

// A failed `expect` is how a check reports its failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod conversations;
mod rooms;
mod stores;
mod task_lists;
mod tasks;
mod users;

/// One `#[tokio::test]` per check, each opening a fresh store with `$open`.
macro_rules! contract_tests {
    ($open:path; $($module:ident :: $check:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $check() {
            crate::$module::$check($open().await).await;
        }
    )*};
}

/// Every check of the contract, against the store opened by `$open`.
macro_rules! suite {
    ($open:path) => {
        contract_tests!($open;
            users::user_create_returns_the_stored_user,
            users::user_duplicate_email_is_taken,
            users::user_duplicate_email_in_other_case_is_taken,
            users::user_find_by_email,
            users::user_get,
            users::user_ping,
            tasks::task_create_then_get,
            tasks::task_get_unknown_or_foreign,
            tasks::task_update_unknown_or_foreign,
            tasks::task_delete_unknown_or_foreign,
            task_lists::task_list_is_newest_first_and_scoped_to_owner,
            task_lists::task_list_pagination_walk,
            task_lists::task_list_completed_filter,
            task_lists::task_list_title_search,
            task_lists::task_list_title_search_folds_every_script_and_any_length,
            task_lists::task_list_title_search_pages,
            tasks::task_update_patch,
            tasks::task_update_completed_keeps_completed_at_consistent,
            tasks::task_toggle_sets_and_clears_completed_at,
            tasks::task_concurrent_toggles_lose_no_update,
            tasks::task_delete_then_not_found,
            conversations::conversation_create_then_get,
            conversations::conversation_list_order_and_message_count,
            conversations::conversation_list_pagination_walk,
            conversations::conversation_messages_oldest_first_with_tool_calls,
            conversations::conversation_get_unknown_or_foreign,
            conversations::conversation_append_unknown_or_foreign,
            conversations::conversation_delete_unknown_or_foreign,
            conversations::conversation_rename_keeps_updated_at_and_refuses_others,
            conversations::conversation_delete_after_keeps_up_to_the_message,
            conversations::conversation_feedback_is_stored_latest_wins_and_goes_with_it,
            conversations::conversation_delete_takes_its_messages,
            conversations::conversation_concurrent_appends_are_all_kept,
            conversations::conversation_get_returns_the_most_recent_messages_and_pages_the_rest,
            conversations::conversation_history_reads_the_newest_messages_that_fit,
            rooms::room_create_then_get,
            rooms::room_unknown_is_not_found_everywhere,
            rooms::room_close_is_for_the_host_only_and_idempotent,
            rooms::room_list_active_newest_first_without_closed,
            rooms::room_list_pagination_walk,
            rooms::room_messages_oldest_first_with_cursor,
            rooms::room_recent_is_the_last_n_oldest_first,
            rooms::room_closed_refuses_messages,
            rooms::room_messages_racing_a_close_land_before_it_or_not_at_all,
            rooms::room_count_open_counts_only_the_hosts_open_sessions,
        );
    };
}

mod sqlite {
    suite!(crate::stores::sqlite);
}

mod postgres {
    suite!(crate::stores::postgres);
}
