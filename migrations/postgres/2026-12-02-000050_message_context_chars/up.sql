-- What each message takes of a model's context when it is sent again
-- (`Message::context_chars`: its text, and each tool call's name, arguments
-- and compact JSON result), so that a turn reads only the history that fits
-- its budget (docs/architecture.md, "A context budget"). The server writes
-- it with every message. Rows from before are estimated here: PostgreSQL's
-- JSON text puts a space after each colon and comma, so the estimate may run
-- a few characters high, which only ever leaves an old message out sooner.
ALTER TABLE messages ADD COLUMN context_chars integer NOT NULL DEFAULT 0;
UPDATE messages SET context_chars = length(content) + coalesce((
    SELECT sum(length(coalesce(call->>'name', '')) + length(coalesce(call->>'arguments', ''))
               + length(coalesce(call->'result', 'null'::jsonb)::text))
    FROM jsonb_array_elements(tool_calls) AS call
), 0);
ALTER TABLE messages ALTER COLUMN context_chars DROP DEFAULT;
