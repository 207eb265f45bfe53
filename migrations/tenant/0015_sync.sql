-- Offline sync bookkeeping (docs/sync.md). A replica is a server-issued client id bound
-- to one user; `last_mutation_id` and the stored results make push exactly-once.
CREATE TABLE sync_clients (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL,
    device           TEXT NOT NULL DEFAULT '',
    scope            TEXT NOT NULL,                 -- JSON: ["WEB", "OPS"] or ["*"]
    sent_projects    TEXT NOT NULL DEFAULT '[]',    -- JSON: project ids the last pull covered
    last_mutation_id INTEGER NOT NULL DEFAULT 0,
    schema           INTEGER NOT NULL,
    created_at       TEXT NOT NULL,
    last_seen_at     TEXT NOT NULL,
    revoked_at       TEXT
);
CREATE INDEX sync_clients_user ON sync_clients(user_id);

-- The answer given to each pushed mutation, replayed verbatim on a retry.
CREATE TABLE sync_results (
    client_id    TEXT NOT NULL,
    mutation_id  INTEGER NOT NULL,
    hash         TEXT NOT NULL,                     -- sha256 of canonical {name, v, args}
    result       TEXT NOT NULL,                     -- JSON, exactly as first returned
    at           TEXT NOT NULL,
    PRIMARY KEY (client_id, mutation_id)
) WITHOUT ROWID;

-- Natural-key merges: a tag a client created offline that already existed by name.
CREATE TABLE sync_id_aliases (
    client_id    TEXT NOT NULL,
    requested_id TEXT NOT NULL,
    actual_id    TEXT NOT NULL,
    PRIMARY KEY (client_id, requested_id)
) WITHOUT ROWID;
