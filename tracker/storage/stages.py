"""SQL for stages (board columns) and transition rules (tenant database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from tracker.storage.rows import first_row

_STAGE_COLUMNS = "id, project_id, name, category, position, created_at, updated_at"


def list_stages(conn: sqlite3.Connection, project_id: str) -> list[sqlite3.Row]:
    """The project's stages in board order."""
    return conn.execute(
        f"SELECT {_STAGE_COLUMNS} FROM stages WHERE project_id = ? ORDER BY position, id",
        (project_id,),
    ).fetchall()


def stage_by_id(conn: sqlite3.Connection, project_id: str, stage_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            f"SELECT {_STAGE_COLUMNS} FROM stages WHERE project_id = ? AND id = ?",
            (project_id, stage_id),
        )
    )


def name_taken(
    conn: sqlite3.Connection, project_id: str, name: str, except_id: str | None = None
) -> bool:
    row = conn.execute(
        "SELECT id FROM stages WHERE project_id = ? AND name = ? COLLATE NOCASE AND id IS NOT ?",
        (project_id, name, except_id),
    ).fetchone()
    return row is not None


def insert_stage(conn: sqlite3.Connection, stage: dict[str, Any]) -> None:
    conn.execute(
        """
        INSERT INTO stages (id, project_id, name, category, position, created_at, updated_at)
        VALUES (:id, :project_id, :name, :category, :position, :created_at, :updated_at)
        """,
        stage,
    )


def update_stage(conn: sqlite3.Connection, stage_id: str, values: dict[str, Any]) -> None:
    """Set name / category / position / updated_at (keys are column names from code)."""
    allowed = ("name", "category", "position", "updated_at")
    columns = [name for name in allowed if name in values]
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    conn.execute(
        f"UPDATE stages SET {assignments} WHERE id = :id",
        {**{name: values[name] for name in columns}, "id": stage_id},
    )


def delete_stage(conn: sqlite3.Connection, stage_id: str) -> None:
    conn.execute("DELETE FROM stages WHERE id = ?", (stage_id,))


def issues_in_stage(conn: sqlite3.Connection, stage_id: str) -> list[sqlite3.Row]:
    """Every issue row of a column, soft-deleted ones too (they still reference it)."""
    return conn.execute(
        """
        SELECT row_id, id, rank, version, resolved_at FROM issues
        WHERE stage_id = ? ORDER BY deleted_at IS NOT NULL, rank, number
        """,
        (stage_id,),
    ).fetchall()


def move_issue(conn: sqlite3.Connection, row_id: int, values: dict[str, Any], at: str) -> int:
    """Put one issue in another column (stage_id, rank, resolved_at); returns its version."""
    row = conn.execute(
        """
        UPDATE issues SET stage_id = :stage_id, rank = :rank, resolved_at = :resolved_at,
                          updated_at = :at, version = version + 1
        WHERE row_id = :row_id RETURNING version
        """,
        {**values, "at": at, "row_id": row_id},
    ).fetchone()
    return int(row[0])


def set_resolved_at(conn: sqlite3.Connection, row_id: int, resolved_at: str | None, at: str) -> int:
    row = conn.execute(
        "UPDATE issues SET resolved_at = ?, updated_at = ?, version = version + 1 "
        "WHERE row_id = ? RETURNING version",
        (resolved_at, at, row_id),
    ).fetchone()
    return int(row[0])


def stage_in_use(conn: sqlite3.Connection, project_id: str, stage_id: str) -> int:
    """How many issues (live or soft-deleted) sit in the stage."""
    row = conn.execute(
        "SELECT count(*) FROM issues WHERE project_id = ? AND stage_id = ?",
        (project_id, stage_id),
    ).fetchone()
    return int(row[0])


# --- transition rules ------------------------------------------------------------------


def list_rules(conn: sqlite3.Connection, project_id: str) -> list[sqlite3.Row]:
    return conn.execute(
        """
        SELECT r.from_stage_id, r.to_stage_id, r.min_role
        FROM transition_rules r
        JOIN stages f ON f.id = r.from_stage_id
        JOIN stages t ON t.id = r.to_stage_id
        WHERE r.project_id = ?
        ORDER BY f.position, t.position
        """,
        (project_id,),
    ).fetchall()


def rules_map(conn: sqlite3.Connection, project_id: str) -> dict[tuple[str, str], str]:
    """(from, to) -> minimum role; empty when the project allows every move."""
    rows = conn.execute(
        "SELECT from_stage_id, to_stage_id, min_role FROM transition_rules WHERE project_id = ?",
        (project_id,),
    ).fetchall()
    return {(row[0], row[1]): row[2] for row in rows}


def replace_rules(
    conn: sqlite3.Connection, project_id: str, rules: Iterable[tuple[str, str, str]]
) -> None:
    conn.execute("DELETE FROM transition_rules WHERE project_id = ?", (project_id,))
    conn.executemany(
        "INSERT INTO transition_rules (project_id, from_stage_id, to_stage_id, min_role) "
        "VALUES (?, ?, ?, ?)",
        [(project_id, *rule) for rule in rules],
    )


def delete_rules_of_stage(conn: sqlite3.Connection, stage_id: str) -> None:
    conn.execute(
        "DELETE FROM transition_rules WHERE from_stage_id = ? OR to_stage_id = ?",
        (stage_id, stage_id),
    )
