DROP INDEX tasks_user_open_idx;
DROP INDEX tasks_user_completed_idx;
DROP INDEX tasks_title_trgm_idx;
ALTER TABLE tasks DROP COLUMN title_folded;
CREATE INDEX tasks_title_trgm_idx ON tasks
    USING gin ((replace(lower(title COLLATE "und-x-icu"), 'ς', 'σ')) gin_trgm_ops);
