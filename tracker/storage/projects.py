"""SQL for projects and project memberships (tenant database)."""

from __future__ import annotations

import sqlite3


def project_with_role(
    conn: sqlite3.Connection, key: str, user_id: str | None
) -> sqlite3.Row | None:
    """A live project by key (case-insensitive) with the caller's explicit member role."""
    return conn.execute(
        """
        SELECT p.*, m.role AS member_role
        FROM projects p
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?
        WHERE p.key = ? COLLATE NOCASE AND p.deleted_at IS NULL
        """,
        (user_id, key),
    ).fetchone()


def insert_project(conn: sqlite3.Connection, project: dict[str, object]) -> bool:
    """Insert a project; False when the key is taken (case-insensitive)."""
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


def project_by_id(conn: sqlite3.Connection, project_id: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
