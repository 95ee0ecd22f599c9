DROP TRIGGER IF EXISTS tasks_title_search_update;
DROP TRIGGER IF EXISTS tasks_title_search_delete;
DROP TRIGGER IF EXISTS tasks_title_search_insert;
DROP TABLE IF EXISTS tasks_title_search;
