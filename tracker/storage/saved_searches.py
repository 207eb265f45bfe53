"""SQL for saved searches (system database)."""

from __future__ import annotations

import sqlite3
from typing import Any

from tracker.storage.rows import first_row

_SELECT = """
SELECT s.id, s.name, s.query, s.created_at, o.slug AS org
FROM saved_searches s LEFT JOIN orgs o ON o.id = s.org_id AND o.archived_at IS NULL
"""


def insert(conn: sqlite3.Connection, row: dict[str, Any]) -> bool:
    """Save one search; False when the user already has one of that name (any case)."""
    try:
        conn.execute(
            "INSERT INTO saved_searches (id, user_id, name, query, org_id, created_at) "
            "VALUES (:id, :user_id, :name, :query, :org_id, :created_at)",
            row,
        )
    except sqlite3.IntegrityError:
        return False
    return True


def count_of(conn: sqlite3.Connection, user_id: str) -> int:
    row = conn.execute("SELECT count(*) FROM saved_searches WHERE user_id = ?", (user_id,))
    return int(row.fetchone()[0])


def one(conn: sqlite3.Connection, search_id: str) -> sqlite3.Row | None:
    return first_row(conn.execute(_SELECT + " WHERE s.id = ?", (search_id,)))


def page(
    conn: sqlite3.Connection, user_id: str, after: tuple[str, str] | None, limit: int
) -> list[sqlite3.Row]:
    """A user's searches by name (case-insensitive), then id: keyset after (name, id)."""
    where, args = "s.user_id = ?", [user_id]
    if after is not None:
        where += " AND (s.name COLLATE NOCASE, s.id) > (?, ?)"
        args += list(after)
    return conn.execute(
        f"{_SELECT} WHERE {where} ORDER BY s.name COLLATE NOCASE, s.id LIMIT ?",
        [*args, limit],
    ).fetchall()


def delete(conn: sqlite3.Connection, user_id: str, search_id: str) -> bool:
    """Delete one of the user's searches; False when there is none with that id (or not theirs)."""
    cursor = conn.execute(
        "DELETE FROM saved_searches WHERE id = ? AND user_id = ?", (search_id, user_id)
    )
    return cursor.rowcount > 0
