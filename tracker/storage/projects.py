"""SQL for projects and project memberships (tenant database)."""

from __future__ import annotations

import sqlite3
from typing import Any

from tracker.storage.rows import first_row

PATCHABLE = ("name", "description", "visibility")


def project_with_role(
    conn: sqlite3.Connection, key: str, user_id: str | None
) -> sqlite3.Row | None:
    """A live project by key (case-insensitive) with the caller's explicit member role."""
    return first_row(
        conn.execute(
            """
        SELECT p.*, m.role AS member_role
        FROM projects p
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?
        WHERE p.key = ? COLLATE NOCASE AND p.deleted_at IS NULL
        """,
            (user_id, key),
        )
    )


def project_by_key(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    """A project by key whether live or soft-deleted (restore needs the deleted ones)."""
    return first_row(conn.execute("SELECT * FROM projects WHERE key = ? COLLATE NOCASE", (key,)))


def project_by_id(conn: sqlite3.Connection, project_id: str) -> sqlite3.Row | None:
    return first_row(conn.execute("SELECT * FROM projects WHERE id = ?", (project_id,)))


def insert_project(conn: sqlite3.Connection, project: dict[str, object]) -> bool:
    """Insert a project; False when the key is taken (case-insensitive, deleted ones too)."""
    try:
        conn.execute(
            """
            INSERT INTO projects (id, key, name, description, visibility, created_by,
                                  created_at, updated_at)
            VALUES (:id, :key, :name, :description, :visibility, :created_by,
                    :created_at, :created_at)
            """,
            project,
        )
    except sqlite3.IntegrityError:
        return False
    return True


def insert_stage(conn: sqlite3.Connection, stage: dict[str, object]) -> None:
    conn.execute(
        """
        INSERT INTO stages (id, project_id, name, category, position, created_at, updated_at)
        VALUES (:id, :project_id, :name, :category, :position, :created_at, :created_at)
        """,
        stage,
    )


def visible_projects(
    conn: sqlite3.Connection,
    user_id: str,
    *,
    see_all: bool,
    deleted: bool,
    after: str,
    limit: int,
) -> list[sqlite3.Row]:
    """Projects by key after `after`: all of them (`see_all`), else org-visible + member-of.

    Each row carries the caller's explicit role as `member_role`, except with
    `see_all` (org owners/admins, whose project role is admin whatever their
    membership): then `member_role` is NULL and the membership join is skipped.
    """
    if see_all:
        return conn.execute(
            """
            SELECT p.*, NULL AS member_role FROM projects p
            WHERE (p.deleted_at IS NOT NULL) = :deleted AND p.key > :after
            ORDER BY p.key LIMIT :limit
            """,
            {"deleted": deleted, "after": after, "limit": limit},
        ).fetchall()
    return conn.execute(
        """
        SELECT p.*, m.role AS member_role
        FROM projects p
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = :user
        WHERE (p.deleted_at IS NOT NULL) = :deleted
          AND (:all OR p.visibility = 'org' OR m.role IS NOT NULL)
          AND p.key > :after
        ORDER BY p.key LIMIT :limit
        """,
        {"user": user_id, "deleted": deleted, "all": see_all, "after": after, "limit": limit},
    ).fetchall()


def update_project(conn: sqlite3.Connection, project_id: str, fields: dict[str, Any]) -> None:
    """Apply patched columns (names from PATCHABLE only), bump version and updated_at."""
    names = [name for name in PATCHABLE if name in fields]
    assignments = "".join(f"{name} = :{name}, " for name in names)
    conn.execute(
        f"UPDATE projects SET {assignments}updated_at = :at, version = version + 1 WHERE id = :id",
        {**{name: fields[name] for name in names}, "at": fields["updated_at"], "id": project_id},
    )


def set_deleted(conn: sqlite3.Connection, project_id: str, deleted_at: str | None, at: str) -> None:
    """Soft-delete (a time) or restore (None); the row, its issues and its key stay."""
    conn.execute(
        "UPDATE projects SET deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ?",
        (deleted_at, at, project_id),
    )


# --- members -----------------------------------------------------------------


def members(
    conn: sqlite3.Connection, project_id: str, after: str = "", limit: int = 200
) -> list[sqlite3.Row]:
    """Explicit members by user id (the email lives in the system database)."""
    return conn.execute(
        """
        SELECT project_id, user_id, role, created_at FROM project_members
        WHERE project_id = ? AND user_id > ? ORDER BY user_id LIMIT ?
        """,
        (project_id, after, limit),
    ).fetchall()


def member(conn: sqlite3.Connection, project_id: str, user_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            "SELECT project_id, user_id, role, created_at FROM project_members "
            "WHERE project_id = ? AND user_id = ?",
            (project_id, user_id),
        )
    )


def insert_member(conn: sqlite3.Connection, row: dict[str, str]) -> bool:
    """Add a project membership; False when the user already has one."""
    try:
        conn.execute(
            "INSERT INTO project_members (project_id, user_id, role, created_at) "
            "VALUES (:project_id, :user_id, :role, :created_at)",
            row,
        )
    except sqlite3.IntegrityError:
        return False
    return True


def set_member_role(conn: sqlite3.Connection, project_id: str, user_id: str, role: str) -> None:
    conn.execute(
        "UPDATE project_members SET role = ? WHERE project_id = ? AND user_id = ?",
        (role, project_id, user_id),
    )


def delete_member(conn: sqlite3.Connection, project_id: str, user_id: str) -> None:
    conn.execute(
        "DELETE FROM project_members WHERE project_id = ? AND user_id = ?", (project_id, user_id)
    )


def memberships_of_user(conn: sqlite3.Connection, user_id: str) -> list[sqlite3.Row]:
    """Every project membership one user holds in this tenant (to drop when they leave)."""
    return conn.execute(
        "SELECT project_id, user_id, role, created_at FROM project_members WHERE user_id = ?",
        (user_id,),
    ).fetchall()


def visibility_facts(conn: sqlite3.Connection, user_id: str) -> list[tuple[str, str, str | None]]:
    """Every live project as (id, visibility, the user's explicit role or NULL): what
    the change feed needs to decide, in the same snapshot as the rows it reads,
    which projects' changes a person may see."""
    return conn.execute(
        """
        SELECT p.id, p.visibility, m.role
        FROM projects p
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?
        WHERE p.deleted_at IS NULL
        """,
        (user_id,),
    ).fetchall()
