"""SQL for invitations (system database)."""

from __future__ import annotations

import sqlite3
from typing import Any

_COLUMNS = "id, org_id, email, role, invited_by, created_at, expires_at"


def insert_invite(conn: sqlite3.Connection, row: dict[str, Any]) -> bool:
    """False when this org already has a pending invite for the email (any case)."""
    conn.execute(
        "DELETE FROM invites WHERE org_id = ? AND email = ? COLLATE NOCASE "
        "AND accepted_at IS NULL AND expires_at <= ?",
        (row["org_id"], row["email"], row["created_at"]),
    )  # an expired one does not block a new one
    try:
        conn.execute(
            f"INSERT INTO invites ({_COLUMNS}) "
            "VALUES (:id, :org_id, :email, :role, :invited_by, :created_at, :expires_at)",
            row,
        )
    except sqlite3.IntegrityError:
        return False
    return True


def pending_for_org(conn: sqlite3.Connection, org_id: str, now: str) -> list[sqlite3.Row]:
    return conn.execute(
        f"SELECT {_COLUMNS} FROM invites WHERE org_id = ? AND accepted_at IS NULL "
        "AND expires_at > ? ORDER BY created_at, id",
        (org_id, now),
    ).fetchall()


def pending_for_email(conn: sqlite3.Connection, email: str, now: str) -> list[sqlite3.Row]:
    """Live invites for an address, from orgs that still exist."""
    return conn.execute(
        f"SELECT i.{_COLUMNS.replace(', ', ', i.')} FROM invites i "
        "JOIN orgs o ON o.id = i.org_id AND o.archived_at IS NULL "
        "WHERE i.email = ? COLLATE NOCASE AND i.accepted_at IS NULL AND i.expires_at > ?",
        (email, now),
    ).fetchall()


def mark_accepted(conn: sqlite3.Connection, invite_id: str, user_id: str, at: str) -> None:
    conn.execute(
        "UPDATE invites SET accepted_at = ?, accepted_by = ? WHERE id = ?",
        (at, user_id, invite_id),
    )


def delete_invite(conn: sqlite3.Connection, org_id: str, invite_id: str) -> bool:
    cursor = conn.execute(
        "DELETE FROM invites WHERE org_id = ? AND id = ? AND accepted_at IS NULL",
        (org_id, invite_id),
    )
    return cursor.rowcount > 0
