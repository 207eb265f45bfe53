"""SQL for time entries and the issue's `time_spent` total they keep (tenant database)."""

from __future__ import annotations

import sqlite3
from typing import Any

_COLUMNS = "id, issue_id, user_id, seconds_spent, description, logged_at, created_at"


def insert_entry(conn: sqlite3.Connection, entry: dict[str, Any]) -> None:
    conn.execute(
        """
        INSERT INTO time_entries (id, issue_id, user_id, seconds_spent, description,
                                  logged_at, created_at)
        VALUES (:id, :issue_id, :user_id, :seconds_spent, :description, :logged_at, :created_at)
        """,
        entry,
    )


def entry_of_issue(conn: sqlite3.Connection, issue_id: str, entry_id: str) -> dict[str, Any] | None:
    """An entry, only when it belongs to that issue."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM time_entries WHERE id = ? AND issue_id = ?", (entry_id, issue_id)
    ).fetchone()
    return dict(row) if row is not None else None


def delete_entry(conn: sqlite3.Connection, entry_id: str) -> None:
    conn.execute("DELETE FROM time_entries WHERE id = ?", (entry_id,))


def add_to_time_spent(conn: sqlite3.Connection, issue_row_id: int, seconds: int, at: str) -> None:
    """Keep issues.time_spent equal to the sum of its entries, in the same transaction."""
    conn.execute(
        "UPDATE issues SET time_spent = time_spent + ?, updated_at = ? WHERE row_id = ?",
        (seconds, at, issue_row_id),
    )


def list_entries(
    conn: sqlite3.Connection, issue_id: str, after: tuple[str, str] | None, limit: int
) -> list[dict[str, Any]]:
    """Chronological by logged_at, keyset-paginated on (logged_at, id)."""
    if after is None:
        rows = conn.execute(
            f"""SELECT {_COLUMNS} FROM time_entries WHERE issue_id = ?
                ORDER BY logged_at, id LIMIT ?""",
            (issue_id, limit),
        )
    else:
        rows = conn.execute(
            f"""SELECT {_COLUMNS} FROM time_entries
                WHERE issue_id = ? AND (logged_at, id) > (?, ?)
                ORDER BY logged_at, id LIMIT ?""",
            (issue_id, *after, limit),
        )
    return [dict(row) for row in rows]


def seconds_by_user(conn: sqlite3.Connection, issue_id: str) -> dict[str, int]:
    rows = conn.execute(
        """SELECT user_id, SUM(seconds_spent) AS seconds FROM time_entries
           WHERE issue_id = ? GROUP BY user_id ORDER BY user_id""",
        (issue_id,),
    )
    return {row["user_id"]: int(row["seconds"]) for row in rows}
