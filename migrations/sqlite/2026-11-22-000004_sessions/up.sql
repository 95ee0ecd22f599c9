-- A séance session is active exactly when closed_at is null.
CREATE TABLE sessions (
    id         TEXT     NOT NULL PRIMARY KEY,
    name       TEXT     NOT NULL,
    max_users  SMALLINT NOT NULL CHECK (max_users BETWEEN 2 AND 50),
    host_id    TEXT     NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at BIGINT   NOT NULL,
    closed_at  BIGINT
);

CREATE INDEX sessions_active_newest ON sessions (created_at DESC, id DESC) WHERE closed_at IS NULL;

-- user_id is null for the spirit (and for a user who has since been deleted).
CREATE TABLE session_messages (
    id         TEXT    NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    TEXT    REFERENCES users (id) ON DELETE SET NULL,
    user_name  TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    is_spirit  BOOLEAN NOT NULL,
    created_at BIGINT  NOT NULL
);

CREATE INDEX session_messages_oldest ON session_messages (session_id, created_at, id);
