"""SQL for custom field definitions (tenant database)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tracker.storage.rows import first_row

_COLUMNS = frozenset({"name", "options", "required", "position"})


def fields_of(conn: sqlite3.Connection, project_id: str) -> list[sqlite3.Row]:
    """A project's field definitions in display order."""
    return conn.execute(
        "SELECT * FROM custom_fields WHERE project_id = ? ORDER BY position, name COLLATE NOCASE",
        (project_id,),
    ).fetchall()


def field_by_id(conn: sqlite3.Connection, project_id: str, field_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            "SELECT * FROM custom_fields WHERE id = ? AND project_id = ?", (field_id, project_id)
        )
    )


def next_position(conn: sqlite3.Connection, project_id: str) -> int:
    row = conn.execute(
        "SELECT coalesce(max(position) + 1, 0) FROM custom_fields WHERE project_id = ?",
        (project_id,),
    ).fetchone()
    return int(row[0])


def insert_field(conn: sqlite3.Connection, field: dict[str, Any]) -> bool:
    """Add a definition; False when the name is taken in the project (case-insensitive)."""
    try:
        conn.execute(
            """
            INSERT INTO custom_fields (id, project_id, name, type, options, required, position,
                                       created_at, updated_at)
            VALUES (:id, :project_id, :name, :type, :options, :required, :position,
                    :created_at, :created_at)
            """,
            {**field, "options": json.dumps(field["options"])},
        )
    except sqlite3.IntegrityError:
        return False
    return True


def update_field(conn: sqlite3.Connection, field_id: str, values: dict[str, Any], at: str) -> bool:
    """Write the named columns; False when a new name is taken."""
    if set(values) - _COLUMNS:
        raise ValueError(f"not writable: {sorted(set(values) - _COLUMNS)}")
    stored = {k: json.dumps(v) if k == "options" else v for k, v in values.items()}
    assignments = "".join(f"{column} = :{column}, " for column in stored)
    try:
        conn.execute(
            f"UPDATE custom_fields SET {assignments}updated_at = :_at WHERE id = :_id",
            {**stored, "_at": at, "_id": field_id},
        )
    except sqlite3.IntegrityError:
        return False
    return True


def delete_field(conn: sqlite3.Connection, field_id: str) -> None:
    """Drop a definition; issues keep the orphaned value, which reads ignore."""
    conn.execute("DELETE FROM custom_fields WHERE id = ?", (field_id,))
