-- Org-wide search and listing sort by time across projects (issue 5). The per-project
-- indexes (issues_updated, issues_created) cannot give one order over several
-- projects, so without these a filters-only org search sorts every live issue.
CREATE INDEX issues_updated_all ON issues(updated_at) WHERE deleted_at IS NULL;
CREATE INDEX issues_created_all ON issues(created_at) WHERE deleted_at IS NULL;
