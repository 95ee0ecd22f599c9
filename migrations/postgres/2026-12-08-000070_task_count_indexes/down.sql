DROP INDEX tasks_user_open_count_idx;
DROP INDEX tasks_user_completed_count_idx;
DROP INDEX tasks_user_count_idx;
ALTER TABLE tasks DROP CONSTRAINT tasks_version_positive;
