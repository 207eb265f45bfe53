"""SQL for an issue's history: its change rows, found through the issue_changes index table."""

from __future__ import annotations

import sqlite3


def issue_changes(
    conn: sqlite3.Connection, issue_id: str, before_seq: int | None, limit: int
) -> list[sqlite3.Row]:
    """Changes about one issue, newest first, strictly before `before_seq`.

    issue_changes (issue_id, seq) is written beside every change row that names
    an issue (UnitOfWork.record(issue=...)), so this is one primary-key range.
    """
    sql = (
        "SELECT c.* FROM issue_changes ic JOIN changes c ON c.seq = ic.seq "
        "WHERE ic.issue_id = ?"
        + (" AND ic.seq < ?" if before_seq is not None else "")
        + " ORDER BY ic.seq DESC LIMIT ?"
    )
    args: tuple[object, ...] = (issue_id,) if before_seq is None else (issue_id, before_seq)
    return conn.execute(sql, (*args, limit)).fetchall()
