-- CJK search (issue 12 item 12; docs/search-cjk.md). unicode61 keeps a run of CJK
-- characters as one token, so `日本語` could not find `日本語のタイトル`. Texts that hold
-- CJK are indexed a second time, segmented into bigrams by the application
-- (tracker.domain.fts.segment), in three more columns of the search index. The
-- segmented text lives in `issue_cjk`, one row per issue that has any CJK (no row,
-- no cost, for everything else); the index's content view reads it beside the
-- issue, so deleting an index entry still replays exactly the indexed text.
-- tracker.storage.migrate fills issue_cjk for existing issues and rebuilds the
-- index right after these statements, in the same transaction.

CREATE TABLE issue_cjk (
    row_id      INTEGER PRIMARY KEY,        -- issues.row_id
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    comments    TEXT NOT NULL
);

DROP TABLE issue_search;
DROP VIEW issue_search_source;

CREATE VIEW issue_search_source AS
SELECT i.row_id AS row_id,
       i.title AS title,
       i.description AS description,
       coalesce((SELECT group_concat(c.body, char(10)) FROM comments c WHERE c.issue_id = i.id), '')
           AS comments,
       coalesce(k.title, '') AS title_cjk,
       coalesce(k.description, '') AS description_cjk,
       coalesce(k.comments, '') AS comments_cjk
FROM issues i LEFT JOIN issue_cjk k ON k.row_id = i.row_id;

CREATE VIRTUAL TABLE issue_search USING fts5(
    title, description, comments, title_cjk, description_cjk, comments_cjk,
    content = 'issue_search_source',
    content_rowid = 'row_id',
    prefix = '2 3',
    tokenize = 'unicode61 remove_diacritics 2'
);
