DROP INDEX IF EXISTS tasks_title_trgm_idx;
-- The extension stays: other objects may have come to use it.
