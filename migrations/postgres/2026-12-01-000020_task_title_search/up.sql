-- `q` on a task list is a substring of the folded title (decision 0008):
-- lower-cased by ICU's root locale, whatever the database's own locale, with
-- the final sigma merged into σ, exactly as the application folds the query.
-- A trigram GIN index over that expression serves `LIKE '%…%'` for queries
-- holding three letters or digits in a row; shorter ones scan the owner's
-- tasks through tasks_user_created_idx.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE INDEX tasks_title_trgm_idx ON tasks
    USING gin ((replace(lower(title COLLATE "und-x-icu"), 'ς', 'σ')) gin_trgm_ops);
