"""SQL for relations: both directions of a link are rows sharing one pair_id."""

from __future__ import annotations

import sqlite3
from typing import Any

_COLUMNS = "id, pair_id, source_id, target_id, type, created_by, created_at"


def insert_relation(conn: sqlite3.Connection, relation: dict[str, Any]) -> bool:
    """Insert one side; False when the same (source, target, type) already exists."""
    try:
        conn.execute(
            """
            INSERT INTO relations (id, pair_id, source_id, target_id, type, created_by, created_at)
            VALUES (:id, :pair_id, :source_id, :target_id, :type, :created_by, :created_at)
            """,
            relation,
        )
    except sqlite3.IntegrityError:
        return False
    return True


def relation_of_issue(
    conn: sqlite3.Connection, issue_id: str, relation_id: str
) -> dict[str, Any] | None:
    """One side of a link, only when it is seen from that issue."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM relations WHERE id = ? AND source_id = ?", (relation_id, issue_id)
    ).fetchone()
    return dict(row) if row is not None else None


def pair(conn: sqlite3.Connection, pair_id: str) -> list[dict[str, Any]]:
    """Both sides of a link, with the project each side's issue belongs to."""
    rows = conn.execute(
        """SELECT r.id, r.pair_id, r.source_id, r.target_id, r.type, r.created_by,
                  r.created_at, i.project_id
           FROM relations r JOIN issues i ON i.id = r.source_id
            WHERE r.pair_id = ? ORDER BY r.id""",
        (pair_id,),
    )
    return [dict(row) for row in rows]


def delete_pair(conn: sqlite3.Connection, pair_id: str) -> None:
    conn.execute("DELETE FROM relations WHERE pair_id = ?", (pair_id,))


def list_relations(
    conn: sqlite3.Connection, issue_id: str, user_id: str | None, after: str | None, limit: int
) -> list[dict[str, Any]]:
    """The links of an issue to live issues, in creation order (ids are time-ordered),
    with what the caller's visibility check needs: the other project's visibility
    and the caller's explicit role there."""
    rows = conn.execute(
        """
        SELECT r.id, r.pair_id, r.type, r.created_by, r.created_at,
               t.id AS issue_id, t.number, t.title, p.key AS project_key,
               p.visibility, m.role AS member_role
        FROM relations r
        JOIN issues t ON t.id = r.target_id AND t.deleted_at IS NULL
        JOIN projects p ON p.id = t.project_id AND p.deleted_at IS NULL
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?
        WHERE r.source_id = ? AND r.id > ?
        ORDER BY r.id LIMIT ?
        """,
        (user_id, issue_id, after or "", limit),
    )
    return [dict(row) for row in rows]


def touch_issue(conn: sqlite3.Connection, issue_id: str, at: str) -> None:
    """Mark an issue as recently active (a link was added or removed)."""
    conn.execute("UPDATE issues SET updated_at = ? WHERE id = ?", (at, issue_id))
