CREATE TABLE conversations (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);

CREATE INDEX conversations_user_recent ON conversations (user_id, updated_at DESC, id DESC);

-- tool_calls: JSON array of {"id", "name", "arguments", "result", "status"}.
CREATE TABLE messages (
    id              TEXT    NOT NULL PRIMARY KEY,
    conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT    NOT NULL,
    tool_calls      TEXT    NOT NULL DEFAULT '[]',
    created_at      BIGINT  NOT NULL
);

CREATE INDEX messages_conversation_oldest ON messages (conversation_id, created_at, id);
