-- Feedback on a conversation's items (ChatKit's items.feedback): one kind per
-- item, the latest wins. An item id is a message id, or `wf_` + a message id.
CREATE TABLE item_feedback (
    conversation_id TEXT   NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    item_id         TEXT   NOT NULL,
    kind            TEXT   NOT NULL CHECK (kind IN ('positive', 'negative')),
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, item_id)
);
