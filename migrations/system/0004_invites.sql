-- Invitations (issue 12): an org admin invites an email address with an org role.
-- Registering with that address (whatever RHYTHM_SIGNUP says, unless `closed`)
-- makes the new account a member; with RHYTHM_SIGNUP=invite it is the only way in.
CREATE TABLE invites (
    id          TEXT PRIMARY KEY,                  -- UUIDv7
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    email       TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    invited_by  TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    accepted_at TEXT,
    accepted_by TEXT REFERENCES users(id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX invites_pending ON invites(org_id, email COLLATE NOCASE)
    WHERE accepted_at IS NULL;
CREATE INDEX invites_by_email ON invites(email COLLATE NOCASE) WHERE accepted_at IS NULL;
