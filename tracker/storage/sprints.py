"""SQL for sprints and the change-log reads behind the burndown (tenant database)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from tracker.storage.rows import first_row

_SPRINT_COLUMNS = """id, project_id, name, goal, state, starts_at, ends_at, started_at,
completed_at, created_at, updated_at, version"""


def insert_sprint(conn: sqlite3.Connection, sprint: dict[str, Any]) -> None:
    conn.execute(
        """
        INSERT INTO sprints (id, project_id, name, goal, state, starts_at, ends_at,
                             created_at, updated_at, version)
        VALUES (:id, :project_id, :name, :goal, :state, :starts_at, :ends_at,
                :created_at, :updated_at, :version)
        """,
        sprint,
    )


def sprint_by_id(conn: sqlite3.Connection, project_id: str, sprint_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            f"SELECT {_SPRINT_COLUMNS} FROM sprints WHERE project_id = ? AND id = ?",
            (project_id, sprint_id),
        )
    )


def sprint_by_name(conn: sqlite3.Connection, project_id: str, name: str) -> sqlite3.Row | None:
    """The newest sprint of that name (names need not be unique; people reuse them)."""
    return first_row(
        conn.execute(
            f"SELECT {_SPRINT_COLUMNS} FROM sprints "
            "WHERE project_id = ? AND name = ? COLLATE NOCASE ORDER BY id DESC LIMIT 1",
            (project_id, name),
        )
    )


def active_sprint(conn: sqlite3.Connection, project_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            f"SELECT {_SPRINT_COLUMNS} FROM sprints WHERE project_id = ? AND state = 'active'",
            (project_id,),
        )
    )


def list_sprints(
    conn: sqlite3.Connection, project_id: str, state: str | None, after_id: str, limit: int
) -> list[sqlite3.Row]:
    """Sprints in creation order (ids are UUIDv7), optionally of one state."""
    return conn.execute(
        f"""
        SELECT {_SPRINT_COLUMNS} FROM sprints
        WHERE project_id = :project AND (:state IS NULL OR state = :state) AND id > :after
        ORDER BY id LIMIT :limit
        """,
        {"project": project_id, "state": state, "after": after_id, "limit": limit},
    ).fetchall()


def update_sprint(conn: sqlite3.Connection, sprint_id: str, values: dict[str, Any]) -> None:
    """Set the given columns (names come from code, never from input) and bump the version."""
    allowed = (
        "name",
        "goal",
        "state",
        "starts_at",
        "ends_at",
        "started_at",
        "completed_at",
        "updated_at",
    )
    columns = [name for name in allowed if name in values]
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    conn.execute(
        f"UPDATE sprints SET {assignments}, version = version + 1 WHERE id = :id",
        {**{name: values[name] for name in columns}, "id": sprint_id},
    )


def unfinished_issues(conn: sqlite3.Connection, sprint_id: str) -> list[sqlite3.Row]:
    """Issues of the sprint whose stage is not `done` (soft-deleted ones too: a restore
    should not bring an issue back into a closed sprint)."""
    return conn.execute(
        """
        SELECT i.row_id, i.id, i.version FROM issues i JOIN stages s ON s.id = i.stage_id
        WHERE i.sprint_id = ? AND s.category != 'done' ORDER BY i.backlog_rank, i.number
        """,
        (sprint_id,),
    ).fetchall()


def set_issue_sprint(
    conn: sqlite3.Connection, row_id: int, sprint_id: str | None, now: str
) -> None:
    conn.execute(
        "UPDATE issues SET sprint_id = ?, updated_at = ?, version = version + 1 WHERE row_id = ?",
        (sprint_id, now, row_id),
    )


# --- burndown -------------------------------------------------------------------------------


def issues_ever_in_sprint(conn: sqlite3.Connection, sprint_id: str) -> list[sqlite3.Row]:
    """Current state of every issue in the sprint now or at any logged moment."""
    encoded = json.dumps(sprint_id)
    return conn.execute(
        """
        SELECT id, sprint_id, resolved_at, estimate, deleted_at FROM issues
        WHERE sprint_id = :sprint OR id IN (
            SELECT entity_id FROM changes WHERE entity = 'issue' AND field = 'sprint_id'
                AND new = :encoded
            UNION
            SELECT entity_id FROM changes WHERE entity = 'issue' AND field = 'sprint_id'
                AND old = :encoded)
        """,
        {"sprint": sprint_id, "encoded": encoded},
    ).fetchall()


def issue_changes(conn: sqlite3.Connection, issue_ids: Sequence[str]) -> list[sqlite3.Row]:
    """The logged rows of these issues (their own entity only), oldest first."""
    rows: list[sqlite3.Row] = []
    for start in range(0, len(issue_ids), 500):
        chunk = issue_ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows += conn.execute(
            f"SELECT seq, at, entity_id, op, field, old, new FROM changes "
            f"WHERE entity = 'issue' AND entity_id IN ({marks}) ORDER BY seq",
            chunk,
        ).fetchall()
    return rows


def completion_seq(conn: sqlite3.Connection, sprint_id: str) -> int | None:
    """The change that completed the sprint (its batch then moved the leftovers out)."""
    row = conn.execute(
        """
        SELECT max(seq) FROM changes INDEXED BY changes_entity_seq
        WHERE entity = 'sprint' AND entity_id = ? AND field = 'state' AND new = '"completed"'
        """,
        (sprint_id,),
    ).fetchone()
    return None if row is None or row[0] is None else int(row[0])
