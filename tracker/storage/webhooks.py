"""SQL on webhooks, their deliveries and attempts (tenant migration 0011).

Also the org markers: an empty file `<data_dir>/<org>/webhooks.on` says "this
org may have hooks", so a restarted server resumes delivery without opening
every tenant. It is created before the first hook commits and removed after the
last one is deleted, so the set of marked orgs always covers the orgs with hooks.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tracker.domain.ids import is_uuid
from tracker.storage.rows import first_row

MARKER = "webhooks.on"

_HOOK_COLUMNS = (
    "id, project_id, url, events, secret, enabled, disabled_reason, since_seq, "
    "created_at, updated_at"
)
_SUMMARY_COLUMNS = (
    "id, webhook_id, seq, event, status, created_at, next_attempt_at, attempt_count, "
    "response_status, duration_ms"
)


# --- hooks ----------------------------------------------------------------------------


def insert_hook(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        f"INSERT INTO webhooks ({_HOOK_COLUMNS}) VALUES "
        "(:id, :project_id, :url, :events, :secret, :enabled, :disabled_reason, :since_seq, "
        ":created_at, :updated_at)",
        {**row, "events": json.dumps(row["events"])},
    )


def hook(conn: sqlite3.Connection, project_id: str, hook_id: str) -> dict[str, Any] | None:
    found = conn.execute(
        f"SELECT {_HOOK_COLUMNS} FROM webhooks WHERE project_id = ? AND id = ?",
        (project_id, hook_id),
    ).fetchone()
    return None if found is None else _hook(found)


def hook_by_id(conn: sqlite3.Connection, hook_id: str) -> dict[str, Any] | None:
    found = conn.execute(f"SELECT {_HOOK_COLUMNS} FROM webhooks WHERE id = ?", (hook_id,))
    row = found.fetchone()
    return None if row is None else _hook(row)


def last_ping_at(conn: sqlite3.Connection, hook_id: str) -> str | None:
    row = conn.execute(
        "SELECT max(created_at) FROM webhook_deliveries WHERE webhook_id = ? AND event = 'ping'",
        (hook_id,),
    ).fetchone()
    return None if row is None else row[0]


def hooks_of_project(
    conn: sqlite3.Connection, project_id: str, after: str | None, limit: int
) -> list[dict[str, Any]]:
    rows = conn.execute(
        f"SELECT {_HOOK_COLUMNS} FROM webhooks WHERE project_id = ? AND id > ? ORDER BY id LIMIT ?",
        (project_id, after or "", limit),
    ).fetchall()
    return [_hook(r) for r in rows]


def enabled_hooks(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every enabled hook of the tenant (the consumer matches events against these)."""
    rows = conn.execute(
        f"SELECT {_HOOK_COLUMNS} FROM webhooks WHERE enabled = 1 ORDER BY id"
    ).fetchall()
    return [_hook(r) for r in rows]


def hook_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM webhooks").fetchone()[0])


def update_hook(conn: sqlite3.Connection, hook_id: str, values: dict[str, Any]) -> None:
    """Set the named columns (names come from the service's fixed field list)."""
    values = {**values}
    if "events" in values:
        values["events"] = json.dumps(values["events"])
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    conn.execute(f"UPDATE webhooks SET {assignments} WHERE id = :hook_id",
                 {**values, "hook_id": hook_id})  # fmt: skip


def delete_hook(conn: sqlite3.Connection, hook_id: str) -> None:
    conn.execute("DELETE FROM webhooks WHERE id = ?", (hook_id,))


def _hook(row: sqlite3.Row) -> dict[str, Any]:
    found = dict(row)
    found["events"] = json.loads(found["events"])
    found["enabled"] = bool(found["enabled"])
    return found


# --- deliveries -------------------------------------------------------------------------


def insert_deliveries(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Rows of (id, webhook_id, seq, event, body, created_at, give_up_at, next_attempt_at)."""
    conn.executemany(
        "INSERT INTO webhook_deliveries (id, webhook_id, seq, event, body, status, created_at, "
        "give_up_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
        rows,
    )


def pending_heads(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    """Per enabled hook with pending deliveries: its url, secret and the due time of its
    head (the oldest pending delivery by seq: a hook's deliveries go out in seq order)."""
    return conn.execute(
        """
        SELECT h.id AS webhook_id, h.url,
               (SELECT d.next_attempt_at FROM webhook_deliveries d
                 WHERE d.webhook_id = h.id AND d.status = 'pending'
                 ORDER BY d.seq, d.id LIMIT 1) AS due
          FROM webhooks h
         WHERE h.enabled = 1 AND due IS NOT NULL
        """
    ).fetchall()


def pending_window(
    conn: sqlite3.Connection, hook_id: str, limit: int, after: tuple[int, str] | None = None
) -> list[sqlite3.Row]:
    """The next `limit` pending deliveries of a hook, in seq order, with what sending needs;
    with `after` = (seq, id), only those after it (the sender's place in its queue)."""
    seq, last = after if after is not None else (-1, "")
    return conn.execute(
        """
        SELECT d.id, d.webhook_id, d.seq, d.event, d.body, d.give_up_at, d.next_attempt_at,
               d.attempt_count, h.url, h.secret, h.enabled
          FROM webhook_deliveries d JOIN webhooks h ON h.id = d.webhook_id
         WHERE d.webhook_id = ? AND d.status = 'pending' AND (d.seq, d.id) > (?, ?)
         ORDER BY d.seq, d.id LIMIT ?
        """,
        (hook_id, seq, last, limit),
    ).fetchall()


#: One delivery's outcome, positional (bound without a name lookup per column):
#: (id, at, status, next_attempt_at, request_headers, response_status, response_body,
#:  error, duration_ms).
Outcome = tuple[str, str, str, float | None, str, int | None, bytes, str | None, int]


def record_attempts(conn: sqlite3.Connection, outcomes: list[Outcome]) -> None:
    """Write attempts and the deliveries' new states, each only while the delivery is still
    pending (a redeliver or delete in between wins). Two `executemany` calls for the lot:
    per-row Python here held the GIL against the sender's event loop (measured)."""
    conn.executemany(
        """
        INSERT INTO webhook_attempts (delivery_id, n, at, status_code, error, duration_ms)
        SELECT id, attempt_count + 1, ?2, ?6, ?8, ?9
          FROM webhook_deliveries WHERE id = ?1 AND status = 'pending'
        """,
        outcomes,
    )
    conn.executemany(
        """
        UPDATE webhook_deliveries
           SET status = ?3, next_attempt_at = ?4, attempt_count = attempt_count + 1,
               request_headers = ?5, response_status = ?6, response_body = ?7, duration_ms = ?9
         WHERE id = ?1 AND status = 'pending'
        """,
        outcomes,
    )


def deliveries_of_hook(
    conn: sqlite3.Connection, hook_id: str, before: int | None, limit: int
) -> list[sqlite3.Row]:
    """The delivery log of a hook, newest first (by rowid: insertion order; UUIDv7 ids
    made in one millisecond do not sort by time)."""
    return conn.execute(
        f"SELECT rowid AS position, {_SUMMARY_COLUMNS} FROM webhook_deliveries "
        "WHERE webhook_id = ? AND rowid < ? ORDER BY rowid DESC LIMIT ?",
        (hook_id, (1 << 62) if before is None else before, limit),
    ).fetchall()


def delivery(conn: sqlite3.Connection, hook_id: str, delivery_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            "SELECT * FROM webhook_deliveries WHERE webhook_id = ? AND id = ?",
            (hook_id, delivery_id),
        )
    )


def attempts(conn: sqlite3.Connection, delivery_id: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT n, at, status_code, error, duration_ms FROM webhook_attempts "
        "WHERE delivery_id = ? ORDER BY n",
        (delivery_id,),
    ).fetchall()


def requeue(conn: sqlite3.Connection, delivery_id: str, now: float, give_up_at: float) -> None:
    """Make a delivery pending again, due now (manual redeliver; same id)."""
    conn.execute(
        "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = ?, give_up_at = ? "
        "WHERE id = ?",
        (now, give_up_at, delivery_id),
    )


# --- org markers --------------------------------------------------------------------------


def mark_org(data_dir: Path, org_id: str) -> None:
    """Note that `org_id` may have hooks (before the first hook commits)."""
    if is_uuid(org_id):
        (data_dir / org_id / MARKER).touch(exist_ok=True)


def unmark_org(data_dir: Path, org_id: str) -> None:
    if is_uuid(org_id):
        (data_dir / org_id / MARKER).unlink(missing_ok=True)


def marked_orgs(data_dir: Path) -> list[str]:
    """Orgs that may have hooks (a directory scan: no tenant is opened)."""
    return sorted(p.parent.name for p in data_dir.glob(f"*/{MARKER}") if is_uuid(p.parent.name))
