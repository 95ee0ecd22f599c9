-- A conversation's messages stored together, in the order they are read:
-- the table's own key is (conversation_id, created_at, id). Before, the
-- history read walked the index `messages_conversation_oldest` and looked
-- up every row in the table by its rowid, one B-tree descent per message;
-- now the newest N messages are one range of the table itself, a few
-- adjacent pages (docs/architecture.md, "A context budget"). `id` stays
-- unique through an index of its own, and counts read a narrow index.
CREATE TABLE messages_clustered (
    id              TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT    NOT NULL,
    tool_calls      TEXT    NOT NULL DEFAULT '[]',
    created_at      BIGINT  NOT NULL,
    context_chars   INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, created_at, id)
) WITHOUT ROWID;

INSERT INTO messages_clustered (id, conversation_id, role, content, tool_calls, created_at, context_chars)
    SELECT id, conversation_id, role, content, tool_calls, created_at, context_chars FROM messages;
DROP TABLE messages;
ALTER TABLE messages_clustered RENAME TO messages;
CREATE UNIQUE INDEX messages_id ON messages (id);
-- What counts a conversation's messages (the conversation list's
-- message_count, a message page's capped total) reads instead of the rows
-- themselves: the table's rows carry the text, this index only the key.
CREATE INDEX messages_conversation ON messages (conversation_id);
