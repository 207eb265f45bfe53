"""SQL for users and refresh-token families (system database). Runs on its thread."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from tracker.domain.emails import normalize_email
from tracker.storage.rows import first_row

USER_COLUMNS = (
    "id, email, display_name, password_hash, token_version, created_at, disabled_at, notify_email"
)


def insert_user(conn: sqlite3.Connection, user: dict[str, Any]) -> bool:
    """Insert a user; False when the email is taken (compared normalized, see domain.emails)."""
    user = {**user, "email": normalize_email(user["email"])}
    try:
        conn.execute(
            """
            INSERT INTO users (id, email, display_name, password_hash, created_at, updated_at)
            VALUES (:id, :email, :display_name, :password_hash, :created_at, :created_at)
            """,
            user,
        )
    except sqlite3.IntegrityError:
        return False
    return True


def rewrite_user_row(conn: sqlite3.Connection, email: str) -> None:
    """Write a user's row back unchanged (register's constant-work path for a taken email)."""
    conn.execute("UPDATE users SET email = email WHERE email = ? COLLATE NOCASE", (email,))


def user_by_email(conn: sqlite3.Connection, email: str) -> sqlite3.Row | None:
    """By normalized email; NOCASE still finds rows stored before normalization (ASCII case)."""
    return first_row(
        conn.execute(
            f"SELECT {USER_COLUMNS} FROM users WHERE email = ? COLLATE NOCASE",
            (normalize_email(email),),
        )
    )


def user_by_id(conn: sqlite3.Connection, user_id: str) -> sqlite3.Row | None:
    return first_row(conn.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,)))


def users_by_ids(conn: sqlite3.Connection, user_ids: list[str]) -> list[sqlite3.Row]:
    return conn.execute(
        f"SELECT {USER_COLUMNS} FROM users WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(user_ids)),),
    ).fetchall()


def update_user(conn: sqlite3.Connection, user_id: str, fields: dict[str, Any], at: str) -> None:
    allowed = {"display_name", "password_hash", "token_version", "notify_email"}
    assignments = ", ".join(f"{name} = :{name}" for name in fields if name in allowed)
    conn.execute(
        f"UPDATE users SET {assignments}, updated_at = :at WHERE id = :id",
        {**fields, "at": at, "id": user_id},
    )


def insert_refresh_token(conn: sqlite3.Connection, token: dict[str, Any]) -> None:
    conn.execute(
        """
        INSERT INTO refresh_tokens (id, token_hash, user_id, family_id, parent_id, created_at,
                                    expires_at, family_expires_at)
        VALUES (:id, :token_hash, :user_id, :family_id, :parent_id, :created_at,
                :expires_at, :family_expires_at)
        """,
        token,
    )


def refresh_token_by_hash(conn: sqlite3.Connection, token_hash: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute("SELECT * FROM refresh_tokens WHERE token_hash = ?", (token_hash,))
    )


def mark_refresh_used(conn: sqlite3.Connection, token_id: str, at: str) -> bool:
    """Compare-and-set: exactly one of two parallel refreshes flips used_at."""
    cursor = conn.execute(
        "UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL "
        "AND revoked_at IS NULL",
        (at, token_id),
    )
    return cursor.rowcount == 1


def revoke_family(conn: sqlite3.Connection, family_id: str, at: str) -> None:
    conn.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
        (at, family_id),
    )


def revoke_user_tokens(conn: sqlite3.Connection, user_id: str, at: str) -> None:
    conn.execute(
        "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        (at, user_id),
    )


def users_by_email(conn: sqlite3.Connection, emails: Sequence[str]) -> list[sqlite3.Row]:
    """Accounts by email, normalized like user_by_email (system database)."""
    return conn.execute(
        "SELECT id, email FROM users WHERE email COLLATE NOCASE IN "
        "(SELECT value FROM json_each(?))",
        (json.dumps([normalize_email(email) for email in emails]),),
    ).fetchall()


def list_users(conn: sqlite3.Connection, after_email: str | None, limit: int) -> list[sqlite3.Row]:
    """Live accounts in email order, after `after_email` (keyset), at most `limit`."""
    return conn.execute(
        f"""
        SELECT {USER_COLUMNS} FROM users
        WHERE disabled_at IS NULL AND (? IS NULL OR email COLLATE NOCASE > ?)
        ORDER BY email COLLATE NOCASE LIMIT ?
        """,
        (after_email, after_email, limit),
    ).fetchall()
