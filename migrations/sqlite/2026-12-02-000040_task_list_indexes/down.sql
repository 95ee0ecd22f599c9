DROP INDEX tasks_user_open;
DROP INDEX tasks_user_completed;
