-- A task is completed exactly when completed_at is set.
-- title_folded is the title lower-cased by the application (Unicode-aware),
-- so case-insensitive search does not depend on SQLite's ASCII-only folding.
CREATE TABLE tasks (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT    NOT NULL,
    title_folded TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    priority     TEXT    NOT NULL DEFAULT 'medium' CHECK (priority IN ('low', 'medium', 'high')),
    due_at       BIGINT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    completed_at BIGINT
);

CREATE INDEX tasks_user_newest ON tasks (user_id, created_at DESC, id DESC);
