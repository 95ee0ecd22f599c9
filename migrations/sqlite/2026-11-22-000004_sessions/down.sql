DROP INDEX session_messages_oldest;
DROP TABLE session_messages;
DROP INDEX sessions_active_newest;
DROP TABLE sessions;
