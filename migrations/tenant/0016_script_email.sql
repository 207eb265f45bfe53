-- Emails sent by scripts (`ctx.email{…}`, docs/scripting.md) go through the same queue as
-- watcher notifications (docs/notifications.md): one notify_events row with no issue
-- (issue_id NULL; the summary holds the subject, body and script) and one notify_pending
-- row per recipient with reason 'script'. SQLite cannot relax NOT NULL or a CHECK in
-- place, so both tables are rebuilt; queued rows keep their ids.
CREATE TABLE notify_pending_keep AS SELECT recipient, event_id, reason FROM notify_pending;
DROP TABLE notify_pending;

CREATE TABLE notify_events_new (
    id         INTEGER PRIMARY KEY,
    issue_id   TEXT,                    -- NULL: an email a script sent (no batching window)
    project_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,        -- the group's highest change seq (a script's: its trigger's)
    at         TEXT NOT NULL,           -- when the change was made: a window opens here
    actor      TEXT,                    -- who made it (NULL: the system or a script)
    summary    TEXT NOT NULL            -- JSON: {"event", "changes": [{field, old, new}]}
                                        -- or, for a script's email, {"event": "script.email",
                                        -- "script", "subject", "body"}
);
INSERT INTO notify_events_new (id, issue_id, project_id, seq, at, actor, summary)
SELECT id, issue_id, project_id, seq, at, actor, summary FROM notify_events;
DROP TABLE notify_events;
ALTER TABLE notify_events_new RENAME TO notify_events;

CREATE TABLE notify_pending (
    recipient TEXT NOT NULL,
    event_id  INTEGER NOT NULL REFERENCES notify_events(id),
    reason    TEXT NOT NULL CHECK (reason IN ('watching', 'mentioned', 'assigned', 'script')),
    PRIMARY KEY (recipient, event_id)
) WITHOUT ROWID;
INSERT INTO notify_pending (recipient, event_id, reason)
SELECT recipient, event_id, reason FROM notify_pending_keep;
DROP TABLE notify_pending_keep;
CREATE INDEX notify_pending_event ON notify_pending(event_id);
