-- A task list's bounded count reads narrow indexes (issue 18). `meta.total`
-- is exact up to 10,000, so past that every list walks 10,001 index entries
-- to learn that there are more. Walking the list's own index, 40 bytes of
-- key an entry, cost 0.85 ms at a million tasks (pgbench, prepared); these
-- hold only `user_id`, deduplicated into posting lists, and the same walk
-- costs 0.53 ms. A task write inserts into two of them (one of the partial
-- pair): pgbench's INSERT rate did not move (6,250-6,650 tps either way).
--
-- `version > 0` holds for every task (versions start at 1; the check says
-- so) and is there to keep these indexes to the statements that ask for
-- them: the count without `q` says `version > 0`, nothing else does. A
-- search's count must read the trigram index; offered a narrow index the
-- planner sometimes walked all of a large owner's tasks through it instead,
-- checking each title (15 ms instead of 2 at 100,000 tasks).
ALTER TABLE tasks ADD CONSTRAINT tasks_version_positive CHECK (version > 0);

CREATE INDEX tasks_user_count_idx ON tasks (user_id) WHERE version > 0;
CREATE INDEX tasks_user_completed_count_idx ON tasks (user_id) WHERE completed_at IS NOT NULL AND version > 0;
CREATE INDEX tasks_user_open_count_idx ON tasks (user_id) WHERE completed_at IS NULL AND version > 0;
