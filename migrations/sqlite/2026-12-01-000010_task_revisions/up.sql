-- Safe AI edits: a version per task, a revision per change (who, how, from
-- where), the tool calls already undone, and plans awaiting approval.
-- JSON columns hold JSON text; times are microseconds since the epoch.
ALTER TABLE tasks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;

-- No foreign key to tasks: a deleted task's history stays, and restores it.
CREATE TABLE task_revisions (
    id              TEXT    NOT NULL PRIMARY KEY,
    task_id         TEXT    NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    version         INTEGER NOT NULL,
    action          TEXT    NOT NULL
        CHECK (action IN ('created', 'updated', 'completed', 'reopened', 'deleted', 'restored')),
    changes         TEXT    NOT NULL,
    actor           TEXT    NOT NULL CHECK (actor IN ('user', 'assistant')),
    origin          TEXT    NOT NULL,
    conversation_id TEXT,
    tool_call_id    TEXT,
    -- The whole task before the change (NULL: it did not exist).
    before          TEXT,
    created_at      BIGINT  NOT NULL
);

CREATE INDEX task_revisions_task ON task_revisions (task_id, created_at DESC, id DESC);
CREATE INDEX task_revisions_tool_call ON task_revisions (user_id, tool_call_id) WHERE tool_call_id IS NOT NULL;

CREATE TABLE reverted_tool_calls (
    user_id      TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tool_call_id TEXT   NOT NULL,
    reverted_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, tool_call_id)
);

CREATE TABLE plans (
    id              TEXT   NOT NULL PRIMARY KEY,
    user_id         TEXT   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id TEXT   NOT NULL,
    origin          TEXT   NOT NULL,
    changes         TEXT   NOT NULL,
    status          TEXT   NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    decided_at      BIGINT
);

CREATE INDEX plans_user ON plans (user_id);
