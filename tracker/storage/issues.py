"""SQL for issues (tenant database)."""

from __future__ import annotations

import sqlite3


def issue_by_number(
    conn: sqlite3.Connection, project_id: str, number: int, *, include_deleted: bool = False
) -> sqlite3.Row | None:
    """The issue `KEY-number` of a project; soft-deleted ones only when asked."""
    row = conn.execute(
        "SELECT * FROM issues WHERE project_id = ? AND number = ?", (project_id, number)
    ).fetchone()
    if row is None or (row["deleted_at"] is not None and not include_deleted):
        return None
    return row
