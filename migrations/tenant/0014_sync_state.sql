-- The tenant's sync epoch and compaction horizon (docs/sync.md). A replica
-- remembers the epoch it cloned; when the server's differs (a restore from
-- backup, a destructive migration) the replica's cursor means nothing any more
-- and it must re-clone instead of pulling. `min_seq` is the oldest seq a pull
-- may resume after (raised only if the change log is ever compacted).
CREATE TABLE sync_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    epoch       TEXT NOT NULL,
    min_seq     INTEGER NOT NULL DEFAULT 0,
    renewed_at  TEXT NOT NULL
);
INSERT INTO sync_state (id, epoch, min_seq, renewed_at)
VALUES (1, lower(hex(randomblob(16))), 0, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
