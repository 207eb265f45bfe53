-- Files on issues and comments. The bytes live content-addressed under the
-- tenant's folder (files/ab/cdef…, by SHA-256), written and fsynced before the
-- row commits; the same bytes uploaded twice are stored once. Rows are soft
-- deleted like issues; `rhythm check` compares rows and files.
CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL REFERENCES projects(id),
    issue_id     TEXT NOT NULL REFERENCES issues(id),
    comment_id   TEXT REFERENCES comments(id),
    filename     TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT NOT NULL CHECK (length(sha256) = 64),
    uploaded_by  TEXT,
    created_at   TEXT NOT NULL,
    deleted_at   TEXT
);
CREATE INDEX attachments_issue ON attachments(issue_id, created_at, id);
CREATE INDEX attachments_sha256 ON attachments(sha256);
