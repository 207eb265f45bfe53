"""SQL on automation scripts, their revisions, run log and schedule ticks (migration 0013)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

SCRIPT_COLUMNS = (
    "id, project_id, name, description, enabled, revision, source, triggers, owner, "
    "created_at, updated_at, deleted_at, version"
)
RUN_COLUMNS = (
    "row_id, id, script_id, revision, trigger_kind, trigger_event, trigger_seq, trigger_at, "
    "trigger_by, status, started_at, duration_ms, logs, error, changes"
)


def insert_script(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        f"INSERT INTO scripts ({SCRIPT_COLUMNS}) VALUES (:id, :project_id, :name, :description, "
        ":enabled, :revision, :source, :triggers, :owner, :created_at, :updated_at, "
        ":deleted_at, :version)",
        row,
    )


def update_script(conn: sqlite3.Connection, script_id: str, fields: dict[str, Any]) -> None:
    """Set the named columns (names come from the service's fixed list) and bump version."""
    allowed = (
        "name",
        "description",
        "enabled",
        "revision",
        "source",
        "triggers",
        "owner",
        "updated_at",
        "deleted_at",
    )
    sets = ", ".join(f"{name} = :{name}" for name in allowed if name in fields)
    conn.execute(
        f"UPDATE scripts SET {sets}, version = version + 1 WHERE id = :id",
        {**{k: fields[k] for k in allowed if k in fields}, "id": script_id},
    )


def script(conn: sqlite3.Connection, project_id: str, script_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {SCRIPT_COLUMNS} FROM scripts "
        "WHERE id = ? AND project_id = ? AND deleted_at IS NULL",
        (script_id, project_id),
    ).fetchone()
    return None if row is None else dict(row)


def script_by_id(conn: sqlite3.Connection, script_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {SCRIPT_COLUMNS} FROM scripts WHERE id = ? AND deleted_at IS NULL",
        (script_id,),
    ).fetchone()
    return None if row is None else dict(row)


def name_taken(conn: sqlite3.Connection, project_id: str, name: str, but: str | None) -> bool:
    row = conn.execute(
        "SELECT 1 FROM scripts WHERE project_id = ? AND name = ? COLLATE NOCASE "
        "AND deleted_at IS NULL AND id IS NOT ?",
        (project_id, name, but),
    ).fetchone()
    return row is not None


def list_scripts(
    conn: sqlite3.Connection, project_id: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {SCRIPT_COLUMNS} FROM scripts WHERE project_id = ? AND deleted_at IS NULL "
        "AND id > coalesce(?, '') ORDER BY id LIMIT ?",
        (project_id, after, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def enabled_scripts(
    conn: sqlite3.Connection, project_ids: list[str] | None
) -> list[dict[str, Any]]:
    """Live, enabled scripts (of the given projects; None = all), oldest first."""
    sql = f"SELECT {SCRIPT_COLUMNS} FROM scripts WHERE enabled = 1 AND deleted_at IS NULL"
    if project_ids is None:
        return [dict(r) for r in conn.execute(sql + " ORDER BY created_at, id")]
    marks = ",".join("?" * len(project_ids))
    rows = conn.execute(f"{sql} AND project_id IN ({marks}) ORDER BY created_at, id", project_ids)
    return [dict(r) for r in rows]


def any_enabled(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM scripts WHERE enabled = 1 AND deleted_at IS NULL LIMIT 1"
        ).fetchone()
        is not None
    )


# --- revisions ----------------------------------------------------------------------------


def insert_revision(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO script_revisions (script_id, revision, source, author, created_at) "
        "VALUES (:script_id, :revision, :source, :author, :created_at)",
        row,
    )


def revisions(
    conn: sqlite3.Connection, script_id: str, before: int | None, limit: int
) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT revision, source, author, created_at FROM script_revisions "
        "WHERE script_id = ? AND revision < coalesce(?, 1 << 62) "
        "ORDER BY revision DESC LIMIT ?",
        (script_id, before, limit),
    ).fetchall()
    return [dict(r) for r in rows]


def revision(conn: sqlite3.Connection, script_id: str, number: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT revision, source, author, created_at FROM script_revisions "
        "WHERE script_id = ? AND revision = ?",
        (script_id, number),
    ).fetchone()
    return None if row is None else dict(row)


# --- runs ---------------------------------------------------------------------------------


def insert_run(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO script_runs (id, script_id, revision, trigger_kind, trigger_event, "
        "trigger_seq, trigger_at, trigger_by, status, started_at, duration_ms, logs, error, "
        "changes) VALUES (:id, :script_id, :revision, :trigger_kind, :trigger_event, "
        ":trigger_seq, :trigger_at, :trigger_by, :status, :started_at, :duration_ms, :logs, "
        ":error, :changes)",
        {**row, "logs": json.dumps(row["logs"]), "changes": json.dumps(row["changes"])},
    )


def ran_for_seq(conn: sqlite3.Connection, script_id: str, seq: int) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM script_runs WHERE script_id = ? AND trigger_seq = ?", (script_id, seq)
        ).fetchone()
        is not None
    )


def runs(
    conn: sqlite3.Connection, script_id: str, before: int | None, limit: int
) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {RUN_COLUMNS} FROM script_runs WHERE script_id = ? "
        "AND row_id < coalesce(?, 1 << 62) ORDER BY row_id DESC LIMIT ?",
        (script_id, before, limit),
    ).fetchall()
    return [_run(r) for r in rows]


def run(conn: sqlite3.Connection, project_id: str, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {', '.join('r.' + c.strip() for c in RUN_COLUMNS.split(','))}, s.name "
        "AS script_name FROM script_runs r JOIN scripts s ON s.id = r.script_id "
        "WHERE r.id = ? AND s.project_id = ?",
        (run_id, project_id),
    ).fetchone()
    return None if row is None else _run(row)


def _run(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["logs"] = json.loads(out["logs"])
    out["changes"] = json.loads(out["changes"])
    return out


# --- schedules ----------------------------------------------------------------------------


def last_tick(conn: sqlite3.Connection, script_id: str, cron: str) -> str | None:
    row = conn.execute(
        "SELECT last_tick FROM script_schedules WHERE script_id = ? AND cron = ?",
        (script_id, cron),
    ).fetchone()
    return None if row is None else str(row[0])


def set_last_tick(conn: sqlite3.Connection, script_id: str, cron: str, tick: str) -> None:
    conn.execute(
        "INSERT INTO script_schedules (script_id, cron, last_tick) VALUES (?, ?, ?) "
        "ON CONFLICT (script_id, cron) DO UPDATE SET last_tick = excluded.last_tick",
        (script_id, cron, tick),
    )


def project_key(conn: sqlite3.Connection, project_id: str) -> str | None:
    row = conn.execute(
        "SELECT key FROM projects WHERE id = ? AND deleted_at IS NULL", (project_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def script_by_name(conn: sqlite3.Connection, project_id: str, name: str) -> dict[str, Any] | None:
    row = conn.execute(
        f"SELECT {SCRIPT_COLUMNS} FROM scripts "
        "WHERE project_id = ? AND name = ? COLLATE NOCASE AND deleted_at IS NULL",
        (project_id, name),
    ).fetchone()
    return None if row is None else dict(row)
