-- Issue history reads every change about one issue: the issue's own rows and
-- those of its comments, links and time entries. UnitOfWork.record(issue=...)
-- stores meta.issue on the change row AND one row here, which the history
-- reads by primary key. (An expression index on json_extract(meta) is refused
-- under PRAGMA trusted_schema=OFF, which every connection sets.)
CREATE TABLE issue_changes (
    issue_id TEXT NOT NULL,
    seq      INTEGER NOT NULL REFERENCES changes(seq),
    PRIMARY KEY (issue_id, seq)
) WITHOUT ROWID;
