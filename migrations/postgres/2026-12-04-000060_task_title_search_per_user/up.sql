-- `q` reads only the owner's tasks (issue 18). The trigram index held every
-- user's titles, so a search's candidates were every user's matching rows,
-- each fetched from the heap and dropped by `user_id`: on a table of
-- 1,100,000 tasks a user with 1,000 of them paid about 2 ms for the others'
-- 12,000 candidates of `q=task 42`. With `user_id` as the index's first
-- column (btree_gin gives uuid a GIN operator class) the index itself
-- intersects the owner's entries with the trigrams' and a search costs
-- what the owner's own matches cost (0.15 ms there).
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE INDEX tasks_user_title_trgm_idx ON tasks USING gin (user_id, title_folded gin_trgm_ops);
DROP INDEX tasks_title_trgm_idx;
