CREATE TABLE users (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL,
    name          text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL
);

-- Emails arrive lower-cased; the index on lower(email) still guards against
-- any writer that forgets.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
