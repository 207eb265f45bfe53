"""SQL for the project tag catalogue and issue-tag links (tenant database)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from tracker.storage.rows import first_row


def tags_named(
    conn: sqlite3.Connection, project_id: str, names: Sequence[str]
) -> dict[str, sqlite3.Row]:
    """Catalogue tags by lower-cased name, for the names given (case-insensitive)."""
    if not names:
        return {}
    marks = ",".join("?" * len(names))
    rows = conn.execute(
        f"SELECT * FROM tags WHERE project_id = ? AND name COLLATE NOCASE IN ({marks})",
        (project_id, *names),
    ).fetchall()
    return {row["name"].lower(): row for row in rows}


def insert_tag(conn: sqlite3.Connection, tag: dict[str, Any]) -> bool:
    """Add a tag to the catalogue; False when the name is taken (case-insensitive)."""
    try:
        conn.execute(
            "INSERT INTO tags (id, project_id, name, color, created_at) "
            "VALUES (:id, :project_id, :name, :color, :created_at)",
            tag,
        )
    except sqlite3.IntegrityError:
        return False
    return True


def tag_by_id(conn: sqlite3.Connection, project_id: str, tag_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute("SELECT * FROM tags WHERE id = ? AND project_id = ?", (tag_id, project_id))
    )


def list_tags(
    conn: sqlite3.Connection, project_id: str, after: list[str] | None, limit: int
) -> list[sqlite3.Row]:
    """Tags in name order (keyset on lower(name), id)."""
    where, args = "project_id = ?", [project_id]
    if after is not None:
        where += " AND (lower(name), id) > (?, ?)"
        args += after
    return conn.execute(
        f"SELECT * FROM tags WHERE {where} ORDER BY lower(name), id LIMIT ?", (*args, limit)
    ).fetchall()


def issues_tagged(conn: sqlite3.Connection, tag_id: str) -> list[str]:
    """Ids of live issues carrying a tag."""
    rows = conn.execute(
        "SELECT it.issue_id FROM issue_tags it JOIN issues i ON i.id = it.issue_id "
        "WHERE it.tag_id = ? AND i.deleted_at IS NULL",
        (tag_id,),
    ).fetchall()
    return [r[0] for r in rows]


def delete_tag(conn: sqlite3.Connection, tag_id: str) -> None:
    """Remove a tag and every link to it (deleted issues' links too)."""
    conn.execute("DELETE FROM issue_tags WHERE tag_id = ?", (tag_id,))
    conn.execute("DELETE FROM tags WHERE id = ?", (tag_id,))


def tags_of_issue(conn: sqlite3.Connection, issue_id: str) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT t.* FROM issue_tags it JOIN tags t ON t.id = it.tag_id WHERE it.issue_id = ? "
        "ORDER BY t.name COLLATE NOCASE",
        (issue_id,),
    ).fetchall()


def link_tag(conn: sqlite3.Connection, issue_id: str, tag_id: str) -> None:
    conn.execute("INSERT INTO issue_tags (issue_id, tag_id) VALUES (?, ?)", (issue_id, tag_id))


def unlink_tag(conn: sqlite3.Connection, issue_id: str, tag_id: str) -> None:
    conn.execute("DELETE FROM issue_tags WHERE issue_id = ? AND tag_id = ?", (issue_id, tag_id))
