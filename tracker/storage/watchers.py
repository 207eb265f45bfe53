"""SQL for issue watchers: explicit choices, and who watches an issue (derived + explicit).

Implicit watchers are derived, not stored: the reporter, the assignees and the
authors of the issue's comments. `issue_watchers` keeps only explicit choices:
watching = 1 adds a person, watching = 0 silences them even when they would
watch implicitly.
"""

from __future__ import annotations

import sqlite3

#: An `as_of` that sorts after every stored ISO time: every comment counts.
NOW = "\uffff"

#: Every (user, reason) pair that makes someone watch an issue, before explicit unwatches.
_REASONS = """
SELECT reporter AS user_id, 'reporter' AS reason FROM issues WHERE id = :issue
UNION ALL SELECT user_id, 'assignee' FROM issue_assignees WHERE issue_id = :issue
UNION ALL SELECT DISTINCT author, 'commenter' FROM comments
          WHERE issue_id = :issue AND author <> '' AND created_at <= :as_of
UNION ALL SELECT user_id, 'watching' FROM issue_watchers WHERE issue_id = :issue AND watching = 1
"""


def reasons(conn: sqlite3.Connection, issue_id: str) -> dict[str, list[str]]:
    """{user_id: [reasons]} of everyone who would watch the issue, muted ones included."""
    found: dict[str, list[str]] = {}
    for user_id, reason in conn.execute(_REASONS, {"issue": issue_id, "as_of": NOW}):
        if user_id:
            found.setdefault(user_id, []).append(reason)
    return found


def choices(conn: sqlite3.Connection, issue_id: str) -> dict[str, bool]:
    """{user_id: watching} of the explicit choices made on the issue."""
    rows = conn.execute(
        "SELECT user_id, watching FROM issue_watchers WHERE issue_id = ?", (issue_id,)
    ).fetchall()
    return {r[0]: bool(r[1]) for r in rows}


def watchers(conn: sqlite3.Connection, issue_id: str, as_of: str = "") -> list[str]:
    """Who watches the issue: implicit and explicit watchers minus explicit unwatches.

    `as_of` (an ISO time) counts only the comments written by then as making their
    authors watch: a change queued late must not reach someone who only commented on
    the issue after it (by default: every comment)."""
    rows = conn.execute(
        f"""
        SELECT user_id FROM ({_REASONS}) WHERE user_id IS NOT NULL AND user_id <> ''
        EXCEPT SELECT user_id FROM issue_watchers WHERE issue_id = :issue AND watching = 0
        """,
        {"issue": issue_id, "as_of": as_of or NOW},
    ).fetchall()
    return [r[0] for r in rows]


def choice_of(conn: sqlite3.Connection, issue_id: str, user_id: str) -> bool | None:
    """The person's explicit choice on the issue (None: they never pressed either)."""
    row = conn.execute(
        "SELECT watching FROM issue_watchers WHERE issue_id = ? AND user_id = ?",
        (issue_id, user_id),
    ).fetchone()
    return None if row is None else bool(row[0])


def set_choice(
    conn: sqlite3.Connection, issue_id: str, user_id: str, watching: bool, at: str
) -> None:
    conn.execute(
        """
        INSERT INTO issue_watchers (issue_id, user_id, watching, updated_at) VALUES (?, ?, ?, ?)
        ON CONFLICT (issue_id, user_id) DO UPDATE
        SET watching = excluded.watching, updated_at = excluded.updated_at
        """,
        (issue_id, user_id, int(watching), at),
    )
