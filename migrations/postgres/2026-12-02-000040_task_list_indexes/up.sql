-- Lists that cost the same at a million tasks as at a thousand (issue 18).
--
-- The folded title (decision 0008) becomes a stored column: a search's
-- filter and the trigram index's recheck read it instead of running ICU's
-- lower() on every candidate row, which was most of a search's time.
ALTER TABLE tasks ADD COLUMN title_folded text
    GENERATED ALWAYS AS (replace(lower(title COLLATE "und-x-icu"), 'ς', 'σ')) STORED;

DROP INDEX tasks_title_trgm_idx;
CREATE INDEX tasks_title_trgm_idx ON tasks USING gin (title_folded gin_trgm_ops);

-- A completed=true|false list, and its bounded count, walk only its own
-- tasks, index-only: the count reads at most 10,001 entries of these.
CREATE INDEX tasks_user_completed_idx ON tasks (user_id, created_at DESC, id DESC) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_user_open_idx ON tasks (user_id, created_at DESC, id DESC) WHERE completed_at IS NULL;
