-- Where each durable consumer of the change feed stands (WebSocket catch-up
-- needs none; script triggers, webhook delivery and notifications each keep
-- one). A consumer advances its row in the same transaction as its own writes,
-- so after a crash it resumes exactly after the last batch it committed.
CREATE TABLE consumer_cursors (
    name        TEXT PRIMARY KEY,
    seq         INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
) WITHOUT ROWID;
