-- Backlog order (SPEC §6). An issue without a backlog_rank sorts by its number,
-- after every generated rank: its key is 'z' + the number padded to 26 digits,
-- a valid fractional-indexing key (integer part of length 27) that generated
-- ranks never reach, because a move to the bottom is placed below the key the
-- next issue number will get. So new and imported issues need no rank written.
ALTER TABLE issues ADD COLUMN backlog_key TEXT
    GENERATED ALWAYS AS (coalesce(backlog_rank, 'z' || printf('%026d', number))) VIRTUAL;
-- Every issue of the project (deleted ones too), so a new rank is placed between
-- neighbours in the whole key space and two issues never share a key.
CREATE INDEX issues_backlog_key ON issues(project_id, backlog_key);
-- The backlog itself: live, open (resolved_at follows done stages), no sprint.
CREATE INDEX issues_backlog ON issues(project_id, backlog_key)
    WHERE deleted_at IS NULL AND sprint_id IS NULL AND resolved_at IS NULL;

-- Burndown replays every issue that was ever in a sprint: those that left it
-- are found through their logged sprint_id changes (old or new = the sprint).
CREATE INDEX changes_sprint_new ON changes(new) WHERE entity = 'issue' AND field = 'sprint_id';
CREATE INDEX changes_sprint_old ON changes(old) WHERE entity = 'issue' AND field = 'sprint_id';
