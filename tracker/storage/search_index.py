"""Keeping the FTS5 index in step with issues and comments, in the caller's transaction.

`issue_search` is an external-content index over the `issue_search_source`
view (title, description, all comments). An entry must be removed with the
exact text it was indexed with, so every writer follows one pattern:

    unindex_issue(conn, row_id)   # before changing title/description/comments
    ... change the data ...
    index_issue(conn, row_id)     # after

Soft-deleted issues stay indexed; queries filter `deleted_at IS NULL`, so a
restore needs no re-indexing.
"""

from __future__ import annotations

import sqlite3

_DELETE = """
INSERT INTO issue_search (issue_search, rowid, title, description, comments)
SELECT 'delete', row_id, title, description, comments FROM issue_search_source WHERE row_id = ?
"""
_INSERT = """
INSERT INTO issue_search (rowid, title, description, comments)
SELECT row_id, title, description, comments FROM issue_search_source WHERE row_id = ?
"""


def unindex_issue(conn: sqlite3.Connection, row_id: int) -> None:
    conn.execute(_DELETE, (row_id,))


def index_issue(conn: sqlite3.Connection, row_id: int) -> None:
    conn.execute(_INSERT, (row_id,))


def rebuild(conn: sqlite3.Connection) -> None:
    """Rebuild the whole index from the view (after a bulk import or a repair)."""
    conn.execute("INSERT INTO issue_search (issue_search) VALUES ('rebuild')")
