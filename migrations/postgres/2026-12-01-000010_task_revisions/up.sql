-- Safe AI edits: a version per task, a revision per change (who, how, from
-- where), the tool calls already undone, and plans awaiting approval.
ALTER TABLE tasks ADD COLUMN version integer NOT NULL DEFAULT 1;

-- No foreign key to tasks: a deleted task's history stays, and restores it.
CREATE TABLE task_revisions (
    id              uuid        PRIMARY KEY,
    task_id         uuid        NOT NULL,
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    version         integer     NOT NULL,
    action          text        NOT NULL
        CHECK (action IN ('created', 'updated', 'completed', 'reopened', 'deleted', 'restored')),
    changes         jsonb       NOT NULL,
    actor           text        NOT NULL CHECK (actor IN ('user', 'assistant')),
    origin          text        NOT NULL,
    conversation_id uuid        NULL,
    tool_call_id    text        NULL,
    -- The whole task before the change (NULL: it did not exist).
    before          jsonb       NULL,
    created_at      timestamptz NOT NULL
);

CREATE INDEX task_revisions_task_idx ON task_revisions (task_id, created_at DESC, id DESC);
CREATE INDEX task_revisions_tool_call_idx ON task_revisions (user_id, tool_call_id) WHERE tool_call_id IS NOT NULL;

CREATE TABLE reverted_tool_calls (
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tool_call_id text        NOT NULL,
    reverted_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, tool_call_id)
);

CREATE TABLE plans (
    id              uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id uuid        NOT NULL,
    origin          text        NOT NULL,
    changes         jsonb       NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    decided_at      timestamptz NULL
);

CREATE INDEX plans_user_idx ON plans (user_id);
