DROP INDEX messages_conversation_oldest;
DROP TABLE messages;
DROP INDEX conversations_user_recent;
DROP TABLE conversations;
