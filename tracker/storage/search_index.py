"""Keeping the FTS5 index in step with issues and comments, in the caller's transaction.

`issue_search` is an external-content index over the `issue_search_source`
view (title, description, all comments, and their CJK-segmented copies). An
entry must be removed with the exact text it was indexed with, so every writer
follows one pattern:

    unindex_issue(conn, row_id)   # before changing title/description/comments
    ... change the data ...
    index_issue(conn, row_id)     # after

CJK (migration 0010, docs/search-cjk.md): `index_issue` first stores the
segmented text (tracker.domain.fts.segment) of an issue whose text holds CJK in
`issue_cjk`, which the view reads; an issue without CJK has no row there and
three empty columns in the index. SQL first keeps only text with any non-ASCII
character (byte length != character length: one pass in C; a GLOB with the
CJK character class measured ~130 µs per KB), so ASCII text never crosses
into Python; the rest is checked there with `has_cjk`.

Soft-deleted issues stay indexed; queries filter `deleted_at IS NULL`, so a
restore needs no re-indexing.
"""

from __future__ import annotations

import sqlite3

from tracker.domain.fts import has_cjk, segment

_COLUMNS = "title, description, comments, title_cjk, description_cjk, comments_cjk"
_DELETE = f"""
INSERT INTO issue_search (issue_search, rowid, {_COLUMNS})
SELECT 'delete', row_id, {_COLUMNS} FROM issue_search_source WHERE row_id = ?
"""
_INSERT = f"""
INSERT INTO issue_search (rowid, {_COLUMNS})
SELECT row_id, {_COLUMNS} FROM issue_search_source WHERE row_id = ?
"""


def _non_ascii(column: str) -> str:
    return f"length(CAST({column} AS BLOB)) != length({column})"


_CJK_SOURCE = f"""
SELECT title, description, comments FROM issue_search_source WHERE row_id = ?1
AND ({_non_ascii("title")} OR {_non_ascii("description")} OR {_non_ascii("comments")})
"""
SAVE_CJK = (
    "INSERT OR REPLACE INTO issue_cjk (row_id, title, description, comments) VALUES (?, ?, ?, ?)"
)


def unindex_issue(conn: sqlite3.Connection, row_id: int) -> None:
    conn.execute(_DELETE, (row_id,))


def index_issue(conn: sqlite3.Connection, row_id: int) -> None:
    _store_cjk(conn, row_id)
    conn.execute(_INSERT, (row_id,))


def cjk_columns(title: str, description: str, comments: str) -> tuple[str, str, str] | None:
    """The `*_cjk` texts of an issue, or None when none of its text holds CJK.
    A field without CJK stays empty: its words are found in its own column."""
    texts = (title, description, comments)
    if not any(map(has_cjk, texts)):
        return None
    return tuple(segment(text) if has_cjk(text) else "" for text in texts)  # type: ignore[return-value]


def save_cjk(conn: sqlite3.Connection, row_id: int, columns: tuple[str, str, str]) -> None:
    conn.execute(SAVE_CJK, (row_id, *columns))


def _store_cjk(conn: sqlite3.Connection, row_id: int) -> None:
    row = conn.execute(_CJK_SOURCE, (row_id,)).fetchone()
    columns = None if row is None else cjk_columns(row[0], row[1], row[2])
    if columns is None:
        conn.execute("DELETE FROM issue_cjk WHERE row_id = ?", (row_id,))
    else:
        save_cjk(conn, row_id, columns)


def rebuild(conn: sqlite3.Connection) -> None:
    """Rebuild the whole index from the view (after a bulk import or a repair)."""
    conn.execute("INSERT INTO issue_search (issue_search) VALUES ('rebuild')")


#: Issues with any non-ASCII text: one pass over the text columns (not the view, which
#: would concatenate every issue's comments), then the view for those only.
_CJK_ROWS = f"""
SELECT row_id, title, description, comments FROM issue_search_source WHERE row_id IN (
    SELECT row_id FROM issues WHERE {_non_ascii("title")} OR {_non_ascii("description")}
    UNION SELECT i.row_id FROM comments c JOIN issues i ON i.id = c.issue_id
    WHERE {_non_ascii("c.body")})
"""


def backfill_cjk(conn: sqlite3.Connection) -> None:
    """Migration 0010's second half: segment every issue that holds CJK, then rebuild."""
    rows = conn.execute(_CJK_ROWS).fetchall()
    for row in rows:
        columns = cjk_columns(row[1], row[2], row[3])
        if columns is not None:
            save_cjk(conn, row[0], columns)
    rebuild(conn)
