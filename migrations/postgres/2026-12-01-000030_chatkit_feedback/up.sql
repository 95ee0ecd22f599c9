-- Feedback on a conversation's items (ChatKit's items.feedback): one kind per
-- item, the latest wins. An item id is a message id, or `wf_` + a message id.
CREATE TABLE item_feedback (
    conversation_id uuid        NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    item_id         text        NOT NULL,
    kind            text        NOT NULL CHECK (kind IN ('positive', 'negative')),
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (conversation_id, item_id)
);
