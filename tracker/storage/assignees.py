"""SQL for issue assignees and for who may be assigned (tenant and system databases)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


def org_member_roles(
    system: sqlite3.Connection, org_id: str, user_ids: Sequence[str]
) -> dict[str, str]:
    """SYSTEM database: {user_id: org role} for those of `user_ids` in the org (live users)."""
    if not user_ids:
        return {}
    rows = system.execute(
        f"""
        SELECT m.user_id, m.role FROM org_members m JOIN users u ON u.id = m.user_id
        WHERE m.org_id = ? AND u.disabled_at IS NULL AND m.user_id IN ({_marks(user_ids)})
        """,
        (org_id, *user_ids),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def users_brief(system: sqlite3.Connection, user_ids: Sequence[str]) -> list[sqlite3.Row]:
    """SYSTEM database: id, email and display name of users, in the order given."""
    if not user_ids:
        return []
    rows = system.execute(
        f"SELECT id, email, display_name FROM users WHERE id IN ({_marks(user_ids)})",
        tuple(user_ids),
    ).fetchall()
    by_id = {r["id"]: r for r in rows}
    return [by_id[u] for u in user_ids if u in by_id]


def project_member_roles(
    conn: sqlite3.Connection, project_id: str, user_ids: Sequence[str]
) -> dict[str, str]:
    """{user_id: explicit project role} for those of `user_ids` who have one."""
    if not user_ids:
        return {}
    rows = conn.execute(
        f"SELECT user_id, role FROM project_members "
        f"WHERE project_id = ? AND user_id IN ({_marks(user_ids)})",
        (project_id, *user_ids),
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def assignees_of(conn: sqlite3.Connection, issue_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT user_id FROM issue_assignees WHERE issue_id = ? ORDER BY user_id", (issue_id,)
    ).fetchall()
    return [r[0] for r in rows]


def add_assignee(conn: sqlite3.Connection, issue_id: str, user_id: str) -> None:
    conn.execute(
        "INSERT INTO issue_assignees (issue_id, user_id) VALUES (?, ?)", (issue_id, user_id)
    )


def remove_assignee(conn: sqlite3.Connection, issue_id: str, user_id: str) -> None:
    conn.execute(
        "DELETE FROM issue_assignees WHERE issue_id = ? AND user_id = ?", (issue_id, user_id)
    )
