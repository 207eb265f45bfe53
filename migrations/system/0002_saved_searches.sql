-- Saved searches (issue 5): a user's named queries, kept with the account so they
-- follow the user across orgs. `org_id` optionally ties one to an org (SET NULL
-- keeps the query if that org is gone: it still parses anywhere).
CREATE TABLE saved_searches (
    id         TEXT PRIMARY KEY,                   -- UUIDv7
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    query      TEXT NOT NULL,
    org_id     TEXT REFERENCES orgs(id) ON DELETE SET NULL,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX saved_searches_name ON saved_searches(user_id, name COLLATE NOCASE);
