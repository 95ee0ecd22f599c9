-- Lists that cost the same at a hundred thousand tasks as at a thousand
-- (issue 18): a completed=true|false list, and its bounded count, walk only
-- its own tasks, and the count reads at most 10,001 entries of these indexes
-- without visiting the table.
CREATE INDEX tasks_user_completed ON tasks (user_id, created_at DESC, id DESC) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_user_open ON tasks (user_id, created_at DESC, id DESC) WHERE completed_at IS NULL;
