-- What each message takes of a model's context when it is sent again
-- (`Message::context_chars`: its text, and each tool call's name, arguments
-- and compact JSON result), so that a turn reads only the history that fits
-- its budget (docs/architecture.md, "A context budget"). The server writes
-- it with every message; rows from before are computed here. (SQLite cannot
-- drop a column's default without rebuilding the table: the 0 stays, and
-- the server never relies on it.)
ALTER TABLE messages ADD COLUMN context_chars INTEGER NOT NULL DEFAULT 0;
UPDATE messages SET context_chars = length(content) + coalesce((
    SELECT sum(length(coalesce(call.value ->> '$.name', '')) + length(coalesce(call.value ->> '$.arguments', ''))
               + length(coalesce(call.value -> '$.result', 'null')))
    FROM json_each(messages.tool_calls) AS call
), 0);
