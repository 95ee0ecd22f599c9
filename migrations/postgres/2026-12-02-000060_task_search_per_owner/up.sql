-- A search costs what the owner's own tasks cost (issue 18): the trigram
-- index leads with user_id (btree_gin), so a `q` reads only the owner's
-- candidates instead of every user's and rechecking them. A 1,000-task
-- owner's `q=task 42` next to a 1,000,000-task owner: the bounded count
-- 3.6 -> 0.7 ms, the page 3.2 -> 1.4 ms; the big owner's unchanged.
CREATE EXTENSION IF NOT EXISTS btree_gin;

DROP INDEX tasks_title_trgm_idx;
CREATE INDEX tasks_title_trgm_idx ON tasks USING gin (user_id, title_folded gin_trgm_ops);
