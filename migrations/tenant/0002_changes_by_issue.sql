-- Issue history reads every change about one issue: the issue's own rows and
-- those of its comments, links and time entries. Each such row carries
-- meta.issue = the issue id (UnitOfWork.record(issue=...)); this index serves it.
CREATE INDEX changes_issue_seq ON changes(json_extract(meta, '$.issue'), seq)
    WHERE meta IS NOT NULL;
