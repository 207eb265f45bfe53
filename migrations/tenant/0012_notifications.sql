-- Watchers and the notification queue (SPEC §8 Notifications; docs/notifications.md).
--
-- issue_watchers holds explicit choices only. The reporter, the assignees and the
-- commenters watch an issue implicitly (derived from their own tables at the time
-- a change is queued); a row here overrides that: watching = 1 when the person
-- pressed "watch", 0 when they pressed "unwatch" (which also silences an implicit
-- watcher until they press "watch" again). Rows are change-logged (entity
-- issue_watcher) like any tenant data.
CREATE TABLE issue_watchers (
    issue_id   TEXT NOT NULL REFERENCES issues(id),
    user_id    TEXT NOT NULL,
    watching   INTEGER NOT NULL CHECK (watching IN (0, 1)),
    updated_at TEXT NOT NULL,
    PRIMARY KEY (issue_id, user_id)
) WITHOUT ROWID;

-- The queue the "notifications" feed consumer fills, in the same transaction as
-- its cursor: one notify_events row per (batch, issue), one notify_pending row per
-- recipient of it. The sender deletes pending rows once their email went out (or
-- was dropped: opted out, no longer allowed to see the project); an event row goes
-- with its last pending row. Consumer state, not tenant data: not change-logged.
CREATE TABLE notify_events (
    id         INTEGER PRIMARY KEY,
    issue_id   TEXT NOT NULL,
    project_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,        -- the group's highest change seq
    at         TEXT NOT NULL,           -- when the change was made: a window opens here
    actor      TEXT,                    -- who made it (NULL: the system or a script)
    summary    TEXT NOT NULL            -- JSON: {"event", "changes": [{field, old, new}]}
);

CREATE TABLE notify_pending (
    recipient TEXT NOT NULL,
    event_id  INTEGER NOT NULL REFERENCES notify_events(id),
    reason    TEXT NOT NULL CHECK (reason IN ('watching', 'mentioned', 'assigned')),
    PRIMARY KEY (recipient, event_id)
) WITHOUT ROWID;
CREATE INDEX notify_pending_event ON notify_pending(event_id);

-- A tenant that already has history starts notifying from now, not from seq 0.
INSERT INTO consumer_cursors (name, seq, updated_at)
SELECT 'notifications', coalesce(max(seq), 0), strftime('%Y-%m-%dT%H:%M:%fZ', 'now') FROM changes;
