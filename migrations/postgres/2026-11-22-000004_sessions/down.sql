DROP TABLE session_messages;
DROP TABLE sessions;
