"""SQL for the membership outbox (system DB) and its idempotency check (tenant DB)."""

from __future__ import annotations

import sqlite3
from typing import Any

_COLUMNS = "seq, org_id, batch, at, user_id, actor, origin, client_id, mutation_id, work"


def add(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    """Queue one intent; call inside the system transaction that changed org_members."""
    conn.execute(
        "INSERT INTO member_outbox (org_id, batch, at, user_id, actor, origin, client_id,"
        " mutation_id, work) VALUES (:org_id, :batch, :at, :user_id, :actor, :origin,"
        " :client_id, :mutation_id, :work)",
        row,
    )


def pending(conn: sqlite3.Connection, org_id: str) -> list[sqlite3.Row]:
    """An org's queued intents, oldest first."""
    sql = f"SELECT {_COLUMNS} FROM member_outbox WHERE org_id = ? ORDER BY seq"
    return conn.execute(sql, (org_id,)).fetchall()


def pending_orgs(conn: sqlite3.Connection) -> list[str]:
    """Orgs with at least one queued intent (normally none)."""
    rows = conn.execute("SELECT DISTINCT org_id FROM member_outbox ORDER BY org_id")
    return [row[0] for row in rows]


def remove(conn: sqlite3.Connection, seq: int) -> None:
    conn.execute("DELETE FROM member_outbox WHERE seq = ?", (seq,))


def batch_logged(conn: sqlite3.Connection, user_id: str, batch: str) -> bool:
    """Tenant side: is this intent's batch already in the change log? (uses changes_entity_seq)"""
    found = conn.execute(
        "SELECT 1 FROM changes WHERE entity = 'org_member' AND entity_id = ? AND batch = ? LIMIT 1",
        (user_id, batch),
    )
    return found.fetchone() is not None
