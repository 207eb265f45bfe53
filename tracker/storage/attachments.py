"""SQL for attachment rows (the bytes: storage/blobs.py)."""

from __future__ import annotations

import sqlite3
from typing import Any

_COLUMNS = (
    "a.id, a.issue_id, a.comment_id, a.filename, a.content_type, a.size, a.sha256, "
    "a.uploaded_by, a.created_at, a.deleted_at, i.number"
)


def insert(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        """
        INSERT INTO attachments (id, project_id, issue_id, comment_id, filename, content_type,
                                 size, sha256, uploaded_by, created_at)
        VALUES (:id, :project_id, :issue_id, :comment_id, :filename, :content_type,
                :size, :sha256, :uploaded_by, :created_at)
        """,
        row,
    )


def of_issue(conn: sqlite3.Connection, issue_id: str) -> list[sqlite3.Row]:
    """An issue's live attachments, oldest first."""
    return conn.execute(
        f"SELECT {_COLUMNS} FROM attachments a JOIN issues i ON i.id = a.issue_id "
        "WHERE a.issue_id = ? AND a.deleted_at IS NULL ORDER BY a.created_at, a.id",
        (issue_id,),
    ).fetchall()


def by_id(conn: sqlite3.Connection, project_id: str, attachment_id: str) -> sqlite3.Row | None:
    """A live attachment of this project whose issue is live too."""
    row: sqlite3.Row | None = conn.execute(
        f"SELECT {_COLUMNS} FROM attachments a JOIN issues i ON i.id = a.issue_id "
        "WHERE a.id = ? AND a.project_id = ? AND a.deleted_at IS NULL AND i.deleted_at IS NULL",
        (attachment_id, project_id),
    ).fetchone()
    return row


def set_deleted(conn: sqlite3.Connection, attachment_id: str, at: str) -> None:
    conn.execute("UPDATE attachments SET deleted_at = ? WHERE id = ?", (at, attachment_id))


def used_bytes(conn: sqlite3.Connection) -> int:
    """Bytes the org's files take on disk (each distinct content once, deleted rows
    included: their files stay until a repair finds no row at all)."""
    row = conn.execute(
        "SELECT coalesce(sum(size), 0) FROM (SELECT DISTINCT sha256, size FROM attachments)"
    ).fetchone()
    return int(row[0])


def all_hashes(conn: sqlite3.Connection) -> set[str]:
    """Every hash a row names (deleted rows included: their bytes may come back)."""
    return {row[0] for row in conn.execute("SELECT DISTINCT sha256 FROM attachments")}
