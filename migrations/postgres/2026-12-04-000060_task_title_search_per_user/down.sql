CREATE INDEX tasks_title_trgm_idx ON tasks USING gin (title_folded gin_trgm_ops);
DROP INDEX tasks_user_title_trgm_idx;
-- btree_gin stays: another database object may have come to use it.
