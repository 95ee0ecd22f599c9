DROP INDEX tasks_title_trgm_idx;
CREATE INDEX tasks_title_trgm_idx ON tasks USING gin (title_folded gin_trgm_ops);
DROP EXTENSION IF EXISTS btree_gin;
