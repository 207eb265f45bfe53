"""SQL for comments and the issue counters they keep (tenant database).

Callers keep the search index in step (search_index.unindex_issue before,
index_issue after) because a comment's text is part of its issue's entry.
"""

from __future__ import annotations

import sqlite3
from typing import Any

_COLUMNS = "id, issue_id, author, body, created_at, updated_at, version"


def insert_comment(conn: sqlite3.Connection, comment: dict[str, Any]) -> None:
    conn.execute(
        """
        INSERT INTO comments (id, issue_id, author, body, created_at, updated_at, version)
        VALUES (:id, :issue_id, :author, :body, :created_at, :updated_at, :version)
        """,
        comment,
    )


def comment_of_issue(
    conn: sqlite3.Connection, issue_id: str, comment_id: str
) -> dict[str, Any] | None:
    """A comment, only when it belongs to that issue (ids from elsewhere are not found)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM comments WHERE id = ? AND issue_id = ?", (comment_id, issue_id)
    ).fetchone()
    return dict(row) if row is not None else None


def update_body(conn: sqlite3.Connection, comment_id: str, body: str, at: str) -> None:
    conn.execute(
        "UPDATE comments SET body = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        (body, at, comment_id),
    )


def delete_comment(conn: sqlite3.Connection, comment_id: str) -> None:
    conn.execute("DELETE FROM comments WHERE id = ?", (comment_id,))


def list_comments(
    conn: sqlite3.Connection, issue_id: str, after: tuple[str, int] | None, limit: int
) -> list[dict[str, Any]]:
    """Oldest first, keyset-paginated on (created_at, row_id): the order of the
    comments_issue index, with insertion order breaking same-millisecond ties."""
    if after is None:
        rows = conn.execute(
            f"""SELECT row_id, {_COLUMNS} FROM comments WHERE issue_id = ?
                ORDER BY created_at, row_id LIMIT ?""",
            (issue_id, limit),
        )
    else:
        rows = conn.execute(
            f"""SELECT row_id, {_COLUMNS} FROM comments
                WHERE issue_id = ? AND (created_at, row_id) > (?, ?)
                ORDER BY created_at, row_id LIMIT ?""",
            (issue_id, *after, limit),
        )
    return [dict(row) for row in rows]


def add_to_comment_count(conn: sqlite3.Connection, issue_row_id: int, delta: int, at: str) -> None:
    """Keep issues.comment_count exact and mark the issue as recently active."""
    conn.execute(
        "UPDATE issues SET comment_count = comment_count + ?, updated_at = ? WHERE row_id = ?",
        (delta, at, issue_row_id),
    )
