"""What a search page needs besides its plan: visible projects, users by email, the page's
issues as the issue endpoints read them, and highlighted snippets."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

#: Private-use characters around matches in highlight(); the service turns them into <mark>.
MARKS = ("\ue000", "\ue001")


def visible_projects(
    conn: sqlite3.Connection, user_id: str | None, see_all: bool
) -> list[sqlite3.Row]:
    """Live projects the caller may read: all (org admins), else org-visible or member of."""
    if see_all:
        return conn.execute(
            "SELECT id, key FROM projects WHERE deleted_at IS NULL ORDER BY key"
        ).fetchall()
    return conn.execute(
        """
        SELECT id, key FROM projects p
        WHERE p.deleted_at IS NULL
          AND (p.visibility = 'org'
               OR EXISTS (SELECT 1 FROM project_members m
                          WHERE m.project_id = p.id AND m.user_id = ?))
        ORDER BY key
        """,
        (user_id,),
    ).fetchall()


def issue_rows(conn: sqlite3.Connection, row_ids: Sequence[int]) -> list[sqlite3.Row]:
    """The page's issues as the issue endpoints read them (ISSUE_VIEW), in page order."""
    from tracker.storage.issues import ISSUE_VIEW  # the pydantic-derived shape: loaded late

    rows = conn.execute(
        ISSUE_VIEW + " WHERE i.row_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(row_ids)),),
    ).fetchall()
    order = {row_id: n for n, row_id in enumerate(row_ids)}
    return sorted(rows, key=lambda row: order[row["row_id"]])


def highlights(
    conn: sqlite3.Connection, positive: str, row_ids: Sequence[int]
) -> dict[int, tuple[str, str, str]]:
    """row id -> (title, description snippet, comments snippet) with MARKS around matches.

    One index lookup per row of the page, so highlighting never scales with the hits.
    """
    start, end = MARKS
    rows = conn.execute(
        """
        SELECT rowid, highlight(issue_search, 0, ?, ?),
               snippet(issue_search, 1, ?, ?, '…', 32), snippet(issue_search, 2, ?, ?, '…', 24)
        FROM issue_search
        WHERE issue_search MATCH ? AND rowid IN (SELECT value FROM json_each(?))
        """,
        (start, end, start, end, start, end, positive, json.dumps(list(row_ids))),
    ).fetchall()
    return {int(row[0]): (row[1] or "", row[2] or "", row[3] or "") for row in rows}
