-- `q` on a task list is a substring of title_folded (decision 0008), which
-- the application now writes with the final sigma merged into σ; rows stored
-- before are brought to the same form.
UPDATE tasks SET title_folded = replace(title_folded, 'ς', 'σ') WHERE instr(title_folded, 'ς') > 0;

-- A trigram index over title_folded, its content read from tasks by rowid and
-- kept in step by the triggers below. Case is already folded, so the
-- tokenizer keeps it as it is. VACUUM renumbers the rowids of a table without
-- an INTEGER PRIMARY KEY: after one, rebuild the index with
--   INSERT INTO tasks_title_search(tasks_title_search) VALUES ('rebuild');
CREATE VIRTUAL TABLE tasks_title_search USING fts5(
    title_folded,
    content = 'tasks',
    content_rowid = 'rowid',
    tokenize = 'trigram case_sensitive 1'
);
INSERT INTO tasks_title_search(tasks_title_search) VALUES ('rebuild');

CREATE TRIGGER tasks_title_search_insert AFTER INSERT ON tasks BEGIN
    INSERT INTO tasks_title_search(rowid, title_folded) VALUES (new.rowid, new.title_folded);
END;

CREATE TRIGGER tasks_title_search_delete AFTER DELETE ON tasks BEGIN
    INSERT INTO tasks_title_search(tasks_title_search, rowid, title_folded)
        VALUES ('delete', old.rowid, old.title_folded);
END;

CREATE TRIGGER tasks_title_search_update AFTER UPDATE OF title_folded ON tasks BEGIN
    INSERT INTO tasks_title_search(tasks_title_search, rowid, title_folded)
        VALUES ('delete', old.rowid, old.title_folded);
    INSERT INTO tasks_title_search(rowid, title_folded) VALUES (new.rowid, new.title_folded);
END;
