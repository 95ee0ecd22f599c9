"""What the SQLite layout of `messages` costs a turn's history read.

Builds four files of 200 conversations x 2,000 messages: the rowid table
with its (conversation_id, created_at, id) index (the layout before
migration 2026-12-04-000060) and the WITHOUT ROWID table keyed that way
(the layout after), each written conversation by conversation
("contiguous") and with the conversations' turns interleaved in time, as a
server writes them ("interleaved"). Then reads the newest 201 messages of a
conversation, as `newest_messages` does, 400 times on a fresh connection
each (the page cache cold, the OS cache warm), and prints the median.

    python3 bench/scripts/sqlite_history_layout.py [folder]

Standard library only; the files go to a temporary folder, removed after.
"""

import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid

CONVERSATIONS, PER_CONVERSATION, READS = 200, 2000, 400

ROWID = """CREATE TABLE messages (id TEXT NOT NULL PRIMARY KEY, conversation_id TEXT NOT NULL,
    role TEXT NOT NULL, content TEXT NOT NULL, tool_calls TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL, context_chars INTEGER NOT NULL DEFAULT 0);
CREATE INDEX messages_conversation_oldest ON messages (conversation_id, created_at, id);"""

CLUSTERED = """CREATE TABLE messages (id TEXT NOT NULL, conversation_id TEXT NOT NULL,
    role TEXT NOT NULL, content TEXT NOT NULL, tool_calls TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL, context_chars INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, created_at, id)) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_id ON messages (id);"""

NEWEST = """SELECT id, role, content, tool_calls, created_at, context_chars FROM messages
    WHERE conversation_id = ? ORDER BY created_at DESC, id DESC LIMIT 201"""


def build(path, schema, interleaved):
    conversations = [str(uuid.UUID(int=i + 1)) for i in range(CONVERSATIONS)]
    if interleaved:
        order = ((c, g) for g in range(PER_CONVERSATION) for c in conversations)
    else:
        order = ((c, g) for c in conversations for g in range(PER_CONVERSATION))
    with sqlite3.connect(path) as conn:
        conn.executescript(schema)
        conn.executemany(
            "INSERT INTO messages (id, conversation_id, role, content, created_at, context_chars) "
            "VALUES (?, ?, 'user', ?, ?, 60)",
            ((str(uuid.uuid4()), c, f"Message {g}: please add a task to buy milk, eggs and bread on Friday", g)
             for c, g in order),
        )
    conn.close()
    return conversations


def median_read_us(path, conversations):
    times = []
    for i in range(READS):
        conn = sqlite3.connect(path)
        started = time.perf_counter()
        rows = conn.execute(NEWEST, (conversations[i % len(conversations)],)).fetchall()
        times.append(time.perf_counter() - started)
        conn.close()
        assert len(rows) == 201
    return statistics.median(times) * 1e6


def main():
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as folder:
        for name, schema in (("rowid + index", ROWID), ("WITHOUT ROWID", CLUSTERED)):
            for interleaved in (False, True):
                path = os.path.join(folder, f"{name.split()[0]}-{interleaved}.db")
                conversations = build(path, schema, interleaved)
                layout = "interleaved" if interleaved else "contiguous"
                print(f"{name:14} {layout:11} newest 201: {median_read_us(path, conversations):6.0f} us median")


if __name__ == "__main__":
    main()
