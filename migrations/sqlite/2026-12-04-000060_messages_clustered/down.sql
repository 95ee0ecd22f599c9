CREATE TABLE messages_by_rowid (
    id              TEXT    NOT NULL PRIMARY KEY,
    conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT    NOT NULL,
    tool_calls      TEXT    NOT NULL DEFAULT '[]',
    created_at      BIGINT  NOT NULL,
    context_chars   INTEGER NOT NULL DEFAULT 0
);

INSERT INTO messages_by_rowid (id, conversation_id, role, content, tool_calls, created_at, context_chars)
    SELECT id, conversation_id, role, content, tool_calls, created_at, context_chars FROM messages;
DROP TABLE messages;
ALTER TABLE messages_by_rowid RENAME TO messages;
CREATE INDEX messages_conversation_oldest ON messages (conversation_id, created_at, id);
