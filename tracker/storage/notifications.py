"""SQL for the notification queue (tenant) and people's notification facts (system).

Queue tables (tenant migration 0012): `notify_events` holds one summary per
(batch, issue); `notify_pending` one row per recipient of it. Nothing here is
change-logged: it is the notification consumer's own state, like its cursor.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from tracker.storage.changes import cursor_of, head
from tracker.storage.rows import first_row


def add_event(
    conn: sqlite3.Connection,
    event: tuple[str | None, str, int, str, str | None, dict[str, Any]],
    recipients: Iterable[tuple[str, str]],
) -> None:
    """Queue one summary `(issue, project, seq, at, actor, summary)` for `(user, reason)`s
    (issue None: a script's email, migration 0016)."""
    issue, project, seq, at, actor, summary = event
    event_id = conn.execute(
        "INSERT INTO notify_events (issue_id, project_id, seq, at, actor, summary) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (issue, project, seq, at, actor, json.dumps(summary, ensure_ascii=False)),
    ).lastrowid
    conn.executemany(
        "INSERT OR IGNORE INTO notify_pending (recipient, event_id, reason) VALUES (?, ?, ?)",
        [(user, event_id, reason) for user, reason in recipients],
    )


def due_groups(conn: sqlite3.Connection, opened_before: str) -> list[tuple[str, str | None]]:
    """(recipient, issue) pairs whose window opened before `opened_before` (ISO time), and
    (recipient, None) for anyone with a script's email queued (those have no window)."""
    rows = conn.execute(
        """
        SELECT p.recipient, e.issue_id
        FROM notify_pending p JOIN notify_events e ON e.id = p.event_id
        GROUP BY p.recipient, e.issue_id HAVING min(e.at) <= ? OR e.issue_id IS NULL
        """,
        (opened_before,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def group_items(
    conn: sqlite3.Connection, recipient: str, issue_id: str | None
) -> list[sqlite3.Row]:
    """The queued summaries for one person and issue, in seq order (issue None: the
    scripts' emails to that person, in queue order)."""
    return conn.execute(
        """
        SELECT e.id, e.project_id, e.seq, e.at, e.actor, e.summary, p.reason
        FROM notify_pending p JOIN notify_events e ON e.id = p.event_id
        WHERE p.recipient = ? AND e.issue_id IS ? ORDER BY e.seq, e.id
        """,
        (recipient, issue_id),
    ).fetchall()


def script_mails(conn: sqlite3.Connection, recipient: str) -> list[sqlite3.Row]:
    """The scripts' emails queued for one person, oldest first, with their project's key."""
    return conn.execute(
        """
        SELECT e.id, e.project_id, pr.key AS project_key, e.summary
        FROM notify_pending p JOIN notify_events e ON e.id = p.event_id
        LEFT JOIN projects pr ON pr.id = e.project_id
        WHERE p.recipient = ? AND e.issue_id IS NULL ORDER BY e.id
        """,
        (recipient,),
    ).fetchall()


def remove(conn: sqlite3.Connection, recipient: str, event_ids: Sequence[int]) -> None:
    """Drop delivered (or dropped) rows; an event goes with its last recipient."""
    ids = json.dumps(list(event_ids))
    conn.execute(
        "DELETE FROM notify_pending WHERE recipient = ? "
        "AND event_id IN (SELECT value FROM json_each(?))",
        (recipient, ids),
    )
    conn.execute(
        "DELETE FROM notify_events WHERE id IN (SELECT value FROM json_each(?)) "
        "AND NOT EXISTS (SELECT 1 FROM notify_pending p WHERE p.event_id = notify_events.id)",
        (ids,),
    )


#: When a script's email "opened its window": it has none, so it is due at once.
NO_WINDOW = "1970-01-01T00:00:00.000Z"


def oldest_pending(conn: sqlite3.Connection) -> str | None:
    """When the oldest still-queued change was made (None: the queue is empty); NO_WINDOW
    when a script's email is queued."""
    row = conn.execute(
        "SELECT min(CASE WHEN e.issue_id IS NULL THEN ? ELSE e.at END) "
        "FROM notify_pending p JOIN notify_events e ON e.id = p.event_id",
        (NO_WINDOW,),
    ).fetchone()
    return None if row is None else row[0]


def backlog(conn: sqlite3.Connection, consumer: str) -> tuple[bool, str | None]:
    """(feed not yet read to its head by `consumer`, oldest queued change): what a start resumes."""
    return cursor_of(conn, consumer) < head(conn), oldest_pending(conn)


def issue_brief(conn: sqlite3.Connection, issue_id: str) -> sqlite3.Row | None:
    """Key pieces of an issue for an email (deleted issues too: a deletion is news)."""
    return first_row(
        conn.execute(
            """
        SELECT i.id, i.number, i.title, p.key AS project_key, p.id AS project_id
        FROM issues i JOIN projects p ON p.id = i.project_id WHERE i.id = ?
        """,
            (issue_id,),
        )
    )


# --- system database ---------------------------------------------------------------------


def recipients(
    system: sqlite3.Connection, org_id: str, user_ids: Sequence[str]
) -> list[sqlite3.Row]:
    """SYSTEM: email, name, opt-in and org role (NULL: not a member) of live users."""
    return system.execute(
        """
        SELECT u.id, u.email, u.display_name, u.notify_email, m.role
        FROM users u LEFT JOIN org_members m ON m.user_id = u.id AND m.org_id = ?
        WHERE u.id IN (SELECT value FROM json_each(?)) AND u.disabled_at IS NULL
        """,
        (org_id, json.dumps(list(user_ids))),
    ).fetchall()


def display_names(system: sqlite3.Connection, user_ids: Sequence[str]) -> dict[str, str]:
    """SYSTEM: {user id: display name, or the email's local part when no name is set}."""
    rows = system.execute(
        "SELECT id, display_name, email FROM users WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(user_ids)),),
    ).fetchall()
    return {r[0]: r[1] or r[2].partition("@")[0] for r in rows}


def members_named(
    system: sqlite3.Connection, org_id: str, tokens: Sequence[str]
) -> list[tuple[str, str]]:
    """SYSTEM: (id, lower-cased email) of live org members whose email, or its local
    part, is one of `tokens` (lower case): who an @mention names."""
    rows = system.execute(
        """
        SELECT u.id, lower(u.email) FROM org_members m JOIN users u ON u.id = m.user_id
        WHERE m.org_id = :org AND u.disabled_at IS NULL
          AND (lower(u.email) IN (SELECT value FROM json_each(:t))
               OR lower(substr(u.email, 1, instr(u.email, '@') - 1))
                  IN (SELECT value FROM json_each(:t)))
        """,
        {"org": org_id, "t": json.dumps(list(tokens))},
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def live_org_slug(system: sqlite3.Connection, org_id: str) -> str | None:
    """SYSTEM: the org's slug, None once it is deleted (archived) or unknown."""
    row = system.execute(
        "SELECT slug FROM orgs WHERE id = ? AND archived_at IS NULL", (org_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def set_email_opt_in(system: sqlite3.Connection, user_id: str, on: bool, at: str) -> None:
    system.execute(
        "UPDATE users SET notify_email = ?, updated_at = ? WHERE id = ?", (int(on), at, user_id)
    )
