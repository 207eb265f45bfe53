-- Tenant database: everything of one organization.
-- Conventions: public ids are UUIDv7 text; tables that feed FTS5 keep an
-- INTEGER PRIMARY KEY (row_id) so the search index's rowid never moves on VACUUM.
-- Times are ISO 8601 UTC text ending in Z, so text order is time order.

-- The change log: issue history, audit trail, event source and sync feed (SPEC §1).
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- the per-tenant cursor, commit order
    id          TEXT NOT NULL,                      -- UUIDv7
    at          TEXT NOT NULL,
    actor       TEXT,                               -- user id; NULL for the system
    origin      TEXT NOT NULL CHECK (origin IN ('api', 'cli', 'sync', 'script', 'system', 'plugin')),
    entity      TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    project     TEXT,                               -- project id after the change
    op          TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete', 'restore', 'move')),
    field       TEXT,
    old         TEXT,                               -- JSON
    new         TEXT,                               -- JSON; full post-image on create/restore
    batch       TEXT NOT NULL,
    client_id   TEXT,
    mutation_id INTEGER,
    version     INTEGER,
    meta        TEXT                                -- JSON
);
CREATE INDEX changes_project_seq ON changes(project, seq);
CREATE INDEX changes_entity_seq ON changes(entity, entity_id, seq);
CREATE INDEX changes_client_mutation ON changes(client_id, mutation_id);

CREATE TABLE projects (
    id          TEXT PRIMARY KEY,
    key         TEXT NOT NULL,                      -- upper case, e.g. WEB
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    visibility  TEXT NOT NULL DEFAULT 'org' CHECK (visibility IN ('org', 'private')),
    next_number INTEGER NOT NULL DEFAULT 1,         -- issue numbers are never reused
    created_by  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    version     INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX projects_key ON projects(key COLLATE NOCASE);

CREATE TABLE project_members (
    project_id TEXT NOT NULL REFERENCES projects(id),
    user_id    TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('viewer', 'reporter', 'developer', 'admin')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (project_id, user_id)
) WITHOUT ROWID;
CREATE INDEX project_members_user ON project_members(user_id);

CREATE TABLE stages (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name       TEXT NOT NULL,
    category   TEXT NOT NULL CHECK (category IN ('todo', 'in_progress', 'done')),
    position   INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX stages_name ON stages(project_id, name COLLATE NOCASE);
CREATE INDEX stages_position ON stages(project_id, position);

-- Optional workflow rules: when a project has any, only listed moves are allowed.
CREATE TABLE transition_rules (
    project_id    TEXT NOT NULL REFERENCES projects(id),
    from_stage_id TEXT NOT NULL REFERENCES stages(id),
    to_stage_id   TEXT NOT NULL REFERENCES stages(id),
    min_role      TEXT NOT NULL DEFAULT 'developer'
                  CHECK (min_role IN ('viewer', 'reporter', 'developer', 'admin')),
    PRIMARY KEY (project_id, from_stage_id, to_stage_id)
) WITHOUT ROWID;

CREATE TABLE sprints (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id),
    name         TEXT NOT NULL,
    goal         TEXT NOT NULL DEFAULT '',
    state        TEXT NOT NULL DEFAULT 'planned' CHECK (state IN ('planned', 'active', 'completed')),
    starts_at    TEXT,
    ends_at      TEXT,
    started_at   TEXT,
    completed_at TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    version      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX sprints_project ON sprints(project_id, state);
CREATE UNIQUE INDEX sprints_one_active ON sprints(project_id) WHERE state = 'active';

CREATE TABLE issues (
    row_id        INTEGER PRIMARY KEY,              -- stable rowid for the search index
    id            TEXT NOT NULL UNIQUE,
    project_id    TEXT NOT NULL REFERENCES projects(id),
    number        INTEGER NOT NULL,
    title         TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    type          TEXT NOT NULL DEFAULT 'task',
    priority      TEXT NOT NULL DEFAULT 'normal',
    stage_id      TEXT NOT NULL REFERENCES stages(id),
    rank          TEXT NOT NULL,                    -- fractional rank within the stage column
    backlog_rank  TEXT,                             -- rank in the backlog / sprint list
    reporter      TEXT NOT NULL,
    sprint_id     TEXT REFERENCES sprints(id),
    parent_id     TEXT REFERENCES issues(id),
    due_date      TEXT,
    estimate      INTEGER,                          -- minutes
    custom_fields TEXT NOT NULL DEFAULT '{}',       -- JSON {field_id: value}
    time_spent    INTEGER NOT NULL DEFAULT 0,       -- seconds, sum of time_entries
    comment_count INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    resolved_at   TEXT,
    deleted_at    TEXT,
    version       INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX issues_number ON issues(project_id, number);
CREATE INDEX issues_board ON issues(project_id, stage_id, rank) WHERE deleted_at IS NULL;
CREATE INDEX issues_updated ON issues(project_id, updated_at) WHERE deleted_at IS NULL;
CREATE INDEX issues_created ON issues(project_id, created_at) WHERE deleted_at IS NULL;
CREATE INDEX issues_sprint ON issues(sprint_id) WHERE sprint_id IS NOT NULL;
CREATE INDEX issues_parent ON issues(parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE tags (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name       TEXT NOT NULL,
    color      TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX tags_name ON tags(project_id, name COLLATE NOCASE);

CREATE TABLE issue_tags (
    issue_id TEXT NOT NULL REFERENCES issues(id),
    tag_id   TEXT NOT NULL REFERENCES tags(id),
    PRIMARY KEY (issue_id, tag_id)
) WITHOUT ROWID;
CREATE INDEX issue_tags_tag ON issue_tags(tag_id);

CREATE TABLE issue_assignees (
    issue_id TEXT NOT NULL REFERENCES issues(id),
    user_id  TEXT NOT NULL,
    PRIMARY KEY (issue_id, user_id)
) WITHOUT ROWID;
CREATE INDEX issue_assignees_user ON issue_assignees(user_id);

CREATE TABLE comments (
    row_id     INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    issue_id   TEXT NOT NULL REFERENCES issues(id),
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version    INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX comments_issue ON comments(issue_id, created_at);

-- Both directions are stored; the two rows of one link share pair_id.
CREATE TABLE relations (
    id         TEXT PRIMARY KEY,
    pair_id    TEXT NOT NULL,
    source_id  TEXT NOT NULL REFERENCES issues(id),
    target_id  TEXT NOT NULL REFERENCES issues(id),
    type       TEXT NOT NULL CHECK (type IN ('blocks', 'is_blocked_by', 'duplicates',
                     'is_duplicated_by', 'relates_to', 'clones', 'is_cloned_by')),
    created_by TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX relations_link ON relations(source_id, target_id, type);
CREATE INDEX relations_pair ON relations(pair_id);
CREATE INDEX relations_target ON relations(target_id);

CREATE TABLE time_entries (
    id            TEXT PRIMARY KEY,
    issue_id      TEXT NOT NULL REFERENCES issues(id),
    user_id       TEXT NOT NULL,
    seconds_spent INTEGER NOT NULL CHECK (seconds_spent > 0),
    description   TEXT NOT NULL DEFAULT '',
    logged_at     TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX time_entries_issue ON time_entries(issue_id, logged_at);

CREATE TABLE custom_fields (
    id         TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects(id),
    name       TEXT NOT NULL,
    type       TEXT NOT NULL CHECK (type IN ('text', 'number', 'date', 'enum', 'multi_enum', 'user')),
    options    TEXT NOT NULL DEFAULT '[]',          -- JSON list for enum / multi_enum
    required   INTEGER NOT NULL DEFAULT 0,
    position   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX custom_fields_name ON custom_fields(project_id, name COLLATE NOCASE);

-- Full-text search (SPEC §5). The index stores no text of its own: its content
-- is this view, and the code that changes issues or comments deletes the old
-- entry and inserts the new one in the same transaction (storage/search_index.py).
CREATE VIEW issue_search_source AS
SELECT i.row_id AS row_id,
       i.title AS title,
       i.description AS description,
       coalesce((SELECT group_concat(c.body, char(10)) FROM comments c WHERE c.issue_id = i.id), '')
           AS comments
FROM issues i;

CREATE VIRTUAL TABLE issue_search USING fts5(
    title, description, comments,
    content = 'issue_search_source',
    content_rowid = 'row_id',
    prefix = '2 3',
    tokenize = 'unicode61 remove_diacritics 2'
);
