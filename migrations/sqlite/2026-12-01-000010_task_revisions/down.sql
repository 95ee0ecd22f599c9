DROP TABLE plans;
DROP TABLE reverted_tool_calls;
DROP TABLE task_revisions;
ALTER TABLE tasks DROP COLUMN version;
