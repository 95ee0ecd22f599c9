DROP TABLE item_feedback;
