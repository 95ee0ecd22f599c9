CREATE TABLE tasks (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        text        NOT NULL,
    description  text        NOT NULL DEFAULT '',
    priority     text        NOT NULL CHECK (priority IN ('low', 'medium', 'high')),
    due_at       timestamptz NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    -- Completion is this column alone: a task is completed iff it is set.
    completed_at timestamptz NULL
);

CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, id DESC);
