-- A task list's bounded count reads narrow indexes (issue 18). `meta.total`
-- is exact up to 10,000, so past that every list walks 10,001 index entries
-- to learn that there are more. Walking the list's own index, 40 bytes of
-- key an entry, cost 0.84 ms at a million tasks (pgbench, prepared); these
-- hold only `user_id`, deduplicated into posting lists, and the same walk
-- costs 0.43 ms. A task write inserts into two of them (one of the partial
-- pair): pgbench's INSERT rate did not move (6,250-6,650 tps either way).
CREATE INDEX tasks_user_count_idx ON tasks (user_id);
CREATE INDEX tasks_user_completed_count_idx ON tasks (user_id) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_user_open_count_idx ON tasks (user_id) WHERE completed_at IS NULL;
