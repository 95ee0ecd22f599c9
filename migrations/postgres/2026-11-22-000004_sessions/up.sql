-- A séance session is active exactly when closed_at is null.
CREATE TABLE sessions (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL,
    max_users  smallint    NOT NULL CHECK (max_users BETWEEN 2 AND 50),
    host_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    closed_at  timestamptz
);

CREATE INDEX sessions_active_newest ON sessions (created_at DESC, id DESC) WHERE closed_at IS NULL;

-- user_id is null for the spirit (and for a user who has since been deleted).
CREATE TABLE session_messages (
    id         uuid        PRIMARY KEY,
    session_id uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    user_id    uuid        REFERENCES users (id) ON DELETE SET NULL,
    user_name  text        NOT NULL,
    message    text        NOT NULL,
    is_spirit  boolean     NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX session_messages_oldest ON session_messages (session_id, created_at, id);
