-- Org-membership changes committed here whose tenant change rows are not written yet.
-- The row is inserted in the same transaction as the org_members change, applied to
-- the org's tenant (change rows with this batch id) and then deleted; rows left by a
-- crash are replayed at start (docs/architecture.md, "Membership writes").
CREATE TABLE member_outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,   -- apply order within an org
    org_id      TEXT NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
    batch       TEXT NOT NULL,                       -- the tenant change batch id
    at          TEXT NOT NULL,
    user_id     TEXT NOT NULL,                       -- whose membership changed
    actor       TEXT,
    origin      TEXT NOT NULL,
    client_id   TEXT,
    mutation_id INTEGER,
    work        TEXT NOT NULL                        -- JSON: records + drop_projects_of
);
CREATE INDEX member_outbox_org ON member_outbox(org_id, seq);
