-- Webhooks (SPEC §8) and their delivery log. A hook belongs to a project; it
-- receives the events committed after `since_seq` (the change that created it).
-- Deliveries are the outbox: written in the same transaction that advances the
-- "webhooks" consumer cursor, sent after commit, their outcome and attempt
-- written in one transaction. The backlog of a dead receiver lives here, not in
-- memory. These rows are operational records, not change-logged entities
-- (creating, changing and deleting a hook is logged as entity "webhook").
CREATE TABLE webhooks (
    id               TEXT PRIMARY KEY,
    project_id       TEXT NOT NULL REFERENCES projects(id),
    url              TEXT NOT NULL,
    events           TEXT NOT NULL,            -- JSON array of event names, or ["*"]
    secret           TEXT NOT NULL,
    enabled          INTEGER NOT NULL DEFAULT 1,
    disabled_reason  TEXT,
    since_seq        INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX webhooks_by_project ON webhooks (project_id, id);

CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,         -- UUIDv7: X-Rhythm-Delivery, stable across retries
    webhook_id       TEXT NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,         -- the event's seq; 0 for a ping
    event            TEXT NOT NULL,
    body             BLOB NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'blocked')),
    created_at       TEXT NOT NULL,
    give_up_at       REAL NOT NULL,            -- Unix seconds: no retry is scheduled after this
    next_attempt_at  REAL,                     -- Unix seconds; NULL once settled
    attempt_count    INTEGER NOT NULL DEFAULT 0,
    request_headers  TEXT,                     -- JSON: the last attempt's headers
    response_status  INTEGER,
    response_body    BLOB,                     -- the first 4 KiB
    duration_ms      INTEGER
);
-- The sender's queue: per hook, pending deliveries in seq order (head of line).
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, seq, id)
    WHERE status = 'pending';
-- The delivery log, newest first (by rowid, which the index carries).
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries (webhook_id);

CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    n            INTEGER NOT NULL,
    at           TEXT NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    duration_ms  INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, n)
) WITHOUT ROWID;
