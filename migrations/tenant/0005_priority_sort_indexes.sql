-- Sorting a whole org by priority or number (issue 5). `sort:priority` orders by this
-- exact expression (tracker.storage.search_filters.PRIORITY_RANK); without these, an
-- org-wide sort reads and sorts every live issue (1.3-1.5 s at 1,000,000 issues). No
-- project_id prefix on purpose: per-project queries keep their own indexes.
CREATE INDEX issues_priority_all ON issues(
    (CASE priority WHEN 'critical' THEN 3 WHEN 'major' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END))
    WHERE deleted_at IS NULL;
CREATE INDEX issues_number_all ON issues(number) WHERE deleted_at IS NULL;
