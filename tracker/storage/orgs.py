"""SQL for the org directory and org memberships (system database)."""

from __future__ import annotations

import sqlite3


def org_with_role(
    conn: sqlite3.Connection, slug: str, user_id: str | None
) -> tuple[sqlite3.Row | None, str | None]:
    """A live org by slug and the caller's org role in it (None when not a member)."""
    row = conn.execute(
        """
        SELECT o.id, o.slug, o.name, o.created_at, o.updated_at, m.role AS my_role
        FROM orgs o LEFT JOIN org_members m ON m.org_id = o.id AND m.user_id = ?
        WHERE o.slug = ? AND o.archived_at IS NULL
        """,
        (user_id, slug),
    ).fetchone()
    return row, (row["my_role"] if row is not None else None)


def slug_taken(conn: sqlite3.Connection, slug: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM orgs WHERE slug = ? AND archived_at IS NULL", (slug,)
        ).fetchone()
        is not None
    )


def insert_org(conn: sqlite3.Connection, org: dict[str, str]) -> bool:
    """Insert an org and its owner; False when the slug is taken by a live org."""
    try:
        conn.execute(
            """
            INSERT INTO orgs (id, slug, name, created_by, created_at, updated_at)
            VALUES (:id, :slug, :name, :created_by, :created_at, :created_at)
            """,
            org,
        )
    except sqlite3.IntegrityError:
        return False
    conn.execute(
        "INSERT INTO org_members (org_id, user_id, role, created_at) "
        "VALUES (:id, :created_by, 'owner', :created_at)",
        org,
    )
    return True


def orgs_of_user(conn: sqlite3.Connection, user_id: str) -> list[sqlite3.Row]:
    return conn.execute(
        """
        SELECT o.id, o.slug, o.name, o.created_at, m.role AS my_role
        FROM org_members m JOIN orgs o ON o.id = m.org_id
        WHERE m.user_id = ? AND o.archived_at IS NULL
        ORDER BY o.slug
        """,
        (user_id,),
    ).fetchall()
