DROP INDEX tasks_user_newest;
DROP TABLE tasks;
