-- Automation scripts (SPEC §8): the script, every revision of its source, and
-- its run log. The run log is operational data (like delivery logs), not a
-- change-logged entity: a run's own changes are in `changes` with origin
-- 'script', and the run lists their seqs. A run caused by a batch of the feed
-- records that batch's seq; the unique index makes "never twice for one script
-- and batch" a property of the file, not only of the code.
CREATE TABLE scripts (
    id          TEXT PRIMARY KEY,
    project_id  TEXT NOT NULL REFERENCES projects(id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enabled     INTEGER NOT NULL DEFAULT 1,
    revision    INTEGER NOT NULL,
    source      TEXT NOT NULL,
    triggers    TEXT NOT NULL,                 -- JSON list, as compiled at save
    owner       TEXT NOT NULL,                 -- who saved the current revision: the run's rights
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX scripts_name ON scripts(project_id, name COLLATE NOCASE)
    WHERE deleted_at IS NULL;

CREATE TABLE script_revisions (
    script_id   TEXT NOT NULL REFERENCES scripts(id),
    revision    INTEGER NOT NULL,
    source      TEXT NOT NULL,
    author      TEXT,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (script_id, revision)
) WITHOUT ROWID;

CREATE TABLE script_runs (
    row_id        INTEGER PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    script_id     TEXT NOT NULL REFERENCES scripts(id),
    revision      INTEGER NOT NULL,
    trigger_kind  TEXT NOT NULL CHECK (trigger_kind IN ('event', 'schedule', 'manual')),
    trigger_event TEXT,
    trigger_seq   INTEGER,                     -- the feed batch that caused an event run
    trigger_at    TEXT,                        -- the tick of a schedule run
    trigger_by    TEXT,                        -- who started a manual run
    status        TEXT NOT NULL
                  CHECK (status IN ('ok', 'error', 'timeout', 'memory', 'skipped')),
    started_at    TEXT NOT NULL,
    duration_ms   INTEGER NOT NULL,
    logs          TEXT NOT NULL,               -- JSON list of strings
    error         TEXT,
    changes       TEXT NOT NULL                -- JSON list of the seqs the run committed
);
CREATE UNIQUE INDEX script_runs_once ON script_runs(script_id, trigger_seq)
    WHERE trigger_seq IS NOT NULL;
CREATE INDEX script_runs_by_script ON script_runs(script_id, row_id);

-- The last tick each schedule ran for: a tick missed while the server was down
-- runs once at start, and a tick is never run twice.
CREATE TABLE script_schedules (
    script_id   TEXT NOT NULL REFERENCES scripts(id),
    cron        TEXT NOT NULL,
    last_tick   TEXT NOT NULL,
    PRIMARY KEY (script_id, cron)
) WITHOUT ROWID;
