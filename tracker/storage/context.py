"""SQL for the context dossiers: the neighbours, comments and history summary of an issue,
and the recent activity of a project. Every list has a stable order (dossiers are
deterministic) and reads through an index: issues_parent, relations_link,
comments_issue, issue_changes' primary key, changes_project_seq."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

from tracker.storage.rows import first_row


def issue_link(conn: sqlite3.Connection, issue_id: str) -> sqlite3.Row | None:
    """Number, title and status of a live issue (a parent)."""
    return first_row(
        conn.execute(
            """SELECT i.number, i.title, s.name AS status FROM issues i
               JOIN stages s ON s.id = i.stage_id
               WHERE i.id = ? AND i.deleted_at IS NULL""",
            (issue_id,),
        )
    )


def children(conn: sqlite3.Connection, issue_id: str) -> list[sqlite3.Row]:
    """Live sub-issues by number."""
    return conn.execute(
        """SELECT i.number, i.title, s.name AS status FROM issues i
           JOIN stages s ON s.id = i.stage_id
           WHERE i.parent_id = ? AND i.deleted_at IS NULL ORDER BY i.number""",
        (issue_id,),
    ).fetchall()


def relations(conn: sqlite3.Connection, issue_id: str, user_id: str | None) -> list[sqlite3.Row]:
    """Every link of the issue to a live issue, in creation order, with what a visibility
    check needs (the other project's visibility, the reader's explicit role there)."""
    return conn.execute(
        """
        SELECT r.type, t.number, t.title, s.name AS status, p.id AS project_id,
               p.key AS project_key, p.visibility, m.role AS member_role
        FROM relations r
        JOIN issues t ON t.id = r.target_id AND t.deleted_at IS NULL
        JOIN projects p ON p.id = t.project_id AND p.deleted_at IS NULL
        JOIN stages s ON s.id = t.stage_id
        LEFT JOIN project_members m ON m.project_id = p.id AND m.user_id = ?
        WHERE r.source_id = ?
        ORDER BY r.id
        """,
        (user_id, issue_id),
    ).fetchall()


def newest_comments(conn: sqlite3.Connection, issue_id: str) -> Iterator[tuple[str, str, str]]:
    """(author, created_at, body), newest first; the caller stops reading when it has
    enough, so an issue with thousands of comments costs only what is shown."""
    return conn.execute(
        """SELECT author, created_at, body FROM comments WHERE issue_id = ?
           ORDER BY created_at DESC, row_id DESC""",
        (issue_id,),
    )


def history_totals(conn: sqlite3.Connection, issue_id: str) -> tuple[int, int, Any, Any]:
    """(changes, distinct actors, first at, last at) of an issue's history."""
    row = conn.execute(
        """SELECT count(*), count(DISTINCT c.actor), min(c.at), max(c.at)
           FROM issue_changes ic JOIN changes c ON c.seq = ic.seq WHERE ic.issue_id = ?""",
        (issue_id,),
    ).fetchone()
    return int(row[0]), int(row[1]), row[2], row[3]


def history_kinds(conn: sqlite3.Connection, issue_id: str) -> list[tuple[str, str, int]]:
    """(entity, op, count) of an issue's history, most frequent first."""
    rows = conn.execute(
        """SELECT c.entity, c.op, count(*) AS n
           FROM issue_changes ic JOIN changes c ON c.seq = ic.seq WHERE ic.issue_id = ?
           GROUP BY c.entity, c.op ORDER BY n DESC, c.entity, c.op""",
        (issue_id,),
    )
    return [(row[0], row[1], int(row[2])) for row in rows]


def status_steps(conn: sqlite3.Connection, issue_id: str, limit: int) -> list[sqlite3.Row]:
    """The latest status changes (old and new as stored JSON), newest first."""
    return conn.execute(
        """SELECT c.at, c.actor, c.old, c.new
           FROM issue_changes ic JOIN changes c ON c.seq = ic.seq
           WHERE ic.issue_id = ? AND c.entity = 'issue' AND c.field = 'status'
           ORDER BY ic.seq DESC LIMIT ?""",
        (issue_id, limit),
    ).fetchall()


def sprint_name(conn: sqlite3.Connection, sprint_id: str) -> str | None:
    row = first_row(conn.execute("SELECT name FROM sprints WHERE id = ?", (sprint_id,)))
    return None if row is None else str(row[0])


def sprint_by_category(conn: sqlite3.Connection, sprint_id: str) -> list[tuple[str, int]]:
    """Live issues of a sprint counted by stage category (todo, in_progress, done)."""
    rows = conn.execute(
        """SELECT s.category, count(*) FROM issues i JOIN stages s ON s.id = i.stage_id
           WHERE i.sprint_id = ? AND i.deleted_at IS NULL
           GROUP BY s.category ORDER BY s.category""",
        (sprint_id,),
    )
    return [(row[0], int(row[1])) for row in rows]


def recent_changes(conn: sqlite3.Connection, project_id: str, limit: int) -> list[sqlite3.Row]:
    """The project's latest change rows, newest first, with the key number of the issue
    each is about (from meta.issue or the issue row itself), when it still exists."""
    return conn.execute(
        """
        SELECT c.seq, c.at, c.actor, c.entity, c.op, c.field, c.batch, i.number, i.title
        FROM changes c
        LEFT JOIN issues i ON i.id = coalesce(c.meta ->> '$.issue',
                                              CASE c.entity WHEN 'issue' THEN c.entity_id END)
        WHERE c.project = ?
        ORDER BY c.seq DESC LIMIT ?
        """,
        (project_id, limit),
    ).fetchall()
