-- System database: accounts, refresh-token families and the org directory.
-- Tenant data never lives here; each org has its own tracker.db.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,               -- UUIDv7
    email         TEXT NOT NULL,                  -- stored as typed, compared case-insensitively
    display_name  TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,                  -- argon2id PHC string
    token_version INTEGER NOT NULL DEFAULT 1,     -- bump to revoke every access token at once
    is_system     INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    disabled_at   TEXT
);
CREATE UNIQUE INDEX users_email ON users(email COLLATE NOCASE);

CREATE TABLE refresh_tokens (
    id                TEXT PRIMARY KEY,
    token_hash        TEXT NOT NULL UNIQUE,       -- sha256 hex; the token itself is never stored
    user_id           TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id         TEXT NOT NULL,
    parent_id         TEXT,
    created_at        TEXT NOT NULL,
    expires_at        TEXT NOT NULL,
    family_expires_at TEXT NOT NULL,
    used_at           TEXT,
    revoked_at        TEXT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);

-- The org directory: slug -> opaque id. The id (never the slug) names the tenant folder.
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL,
    name        TEXT NOT NULL,
    created_by  TEXT REFERENCES users(id),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    archived_at TEXT,                             -- set when the org is deleted (folder archived)
    archive_path TEXT
);
CREATE UNIQUE INDEX orgs_live_slug ON orgs(slug) WHERE archived_at IS NULL;

CREATE TABLE org_members (
    org_id     TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role       TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
) WITHOUT ROWID;
CREATE INDEX org_members_user ON org_members(user_id);
