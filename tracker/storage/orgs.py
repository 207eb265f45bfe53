"""SQL for the org directory and org memberships (system database)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tracker.storage.rows import first_row

MAX_SLUG = 40
ORG_COLUMNS = "id, slug, name, created_by, created_at, updated_at, archived_at, archive_path"


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


def org_by_id(conn: sqlite3.Connection, org_id: str) -> sqlite3.Row | None:
    return first_row(conn.execute(f"SELECT {ORG_COLUMNS} FROM orgs WHERE id = ?", (org_id,)))


def slug_taken(conn: sqlite3.Connection, slug: str) -> bool:
    found = conn.execute("SELECT 1 FROM orgs WHERE slug = ? AND archived_at IS NULL", (slug,))
    return found.fetchone() is not None


def free_slug(conn: sqlite3.Connection, base: str) -> str:
    """`base`, or `base-2`, `base-3`... whichever no live org uses (call inside the write)."""
    candidate, n = base, 1
    while slug_taken(conn, candidate):
        n += 1
        candidate = f"{base[: MAX_SLUG - len(str(n)) - 1].rstrip('-')}-{n}"
    return candidate


def insert_org(conn: sqlite3.Connection, org: dict[str, Any]) -> bool:
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


def delete_org_row(conn: sqlite3.Connection, org_id: str) -> None:
    """Undo an insert whose tenant side failed (org_members cascade)."""
    conn.execute("DELETE FROM org_members WHERE org_id = ?", (org_id,))
    conn.execute("DELETE FROM orgs WHERE id = ?", (org_id,))


def update_org(conn: sqlite3.Connection, org_id: str, fields: dict[str, str], at: str) -> bool:
    """Set name and/or slug; False when the new slug is taken by another live org."""
    allowed = [name for name in ("name", "slug") if name in fields]
    assignments = ", ".join(f"{name} = :{name}" for name in allowed)
    values: dict[str, str] = {**{k: fields[k] for k in allowed}, "at": at, "id": org_id}
    try:
        conn.execute(f"UPDATE orgs SET {assignments}, updated_at = :at WHERE id = :id", values)
    except sqlite3.IntegrityError:
        return False
    return True


def archive_org(conn: sqlite3.Connection, org_id: str, at: str, archive_path: str) -> None:
    """Take an org out of the directory; its slug is free again at once."""
    conn.execute(
        "UPDATE orgs SET archived_at = ?, archive_path = ?, updated_at = ? WHERE id = ?",
        (at, archive_path, at, org_id),
    )


def unarchive_org(conn: sqlite3.Connection, org_id: str, slug: str, at: str) -> bool:
    """Bring an archived org back under `slug`; False when a live org holds that slug."""
    try:
        conn.execute(
            "UPDATE orgs SET archived_at = NULL, archive_path = NULL, slug = ?, updated_at = ? "
            "WHERE id = ?",
            (slug, at, org_id),
        )
    except sqlite3.IntegrityError:
        return False
    return True


def archived_orgs(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        f"SELECT {ORG_COLUMNS} FROM orgs WHERE archived_at IS NOT NULL ORDER BY archived_at DESC"
    ).fetchall()


def orgs_of_user(
    conn: sqlite3.Connection, user_id: str, after: str = "", limit: int = 200
) -> list[sqlite3.Row]:
    """The live orgs a user belongs to, by slug, starting after `after`."""
    return conn.execute(
        """
        SELECT o.id, o.slug, o.name, o.created_at, m.role AS my_role
        FROM org_members m JOIN orgs o ON o.id = m.org_id
        WHERE m.user_id = ? AND o.archived_at IS NULL AND o.slug > ?
        ORDER BY o.slug LIMIT ?
        """,
        (user_id, after, limit),
    ).fetchall()


def all_live_orgs(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        """
        SELECT o.id, o.slug, o.name, o.created_at, NULL AS my_role
        FROM orgs o WHERE o.archived_at IS NULL ORDER BY o.slug
        """
    ).fetchall()


# --- members -----------------------------------------------------------------

_MEMBER_SELECT = """
SELECT m.user_id, u.email, u.display_name, m.role, m.created_at
FROM org_members m JOIN users u ON u.id = m.user_id
"""


def members(
    conn: sqlite3.Connection, org_id: str, after: tuple[str, str] = ("", ""), limit: int = 200
) -> list[sqlite3.Row]:
    """Members ordered by (lower(email), user_id), starting after that key."""
    return conn.execute(
        _MEMBER_SELECT
        + """
        WHERE m.org_id = ? AND (lower(u.email), m.user_id) > (?, ?)
        ORDER BY lower(u.email), m.user_id LIMIT ?
        """,
        (org_id, after[0], after[1], limit),
    ).fetchall()


def member(conn: sqlite3.Connection, org_id: str, user_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(_MEMBER_SELECT + " WHERE m.org_id = ? AND m.user_id = ?", (org_id, user_id))
    )


def insert_member(conn: sqlite3.Connection, row: dict[str, str]) -> bool:
    """Add a membership; False when the user already belongs to the org."""
    try:
        conn.execute(
            "INSERT INTO org_members (org_id, user_id, role, created_at) "
            "VALUES (:org_id, :user_id, :role, :created_at)",
            row,
        )
    except sqlite3.IntegrityError:
        return False
    return True


def set_member_role(conn: sqlite3.Connection, org_id: str, user_id: str, role: str) -> None:
    conn.execute(
        "UPDATE org_members SET role = ? WHERE org_id = ? AND user_id = ?",
        (role, org_id, user_id),
    )


def delete_member(conn: sqlite3.Connection, org_id: str, user_id: str) -> None:
    conn.execute("DELETE FROM org_members WHERE org_id = ? AND user_id = ?", (org_id, user_id))


def owner_count(conn: sqlite3.Connection, org_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM org_members WHERE org_id = ? AND role = 'owner'", (org_id,)
    ).fetchone()
    return int(row[0])


def member_roles(conn: sqlite3.Connection, org_id: str, user_ids: list[str]) -> dict[str, str]:
    """Org roles of several users at once (absent: not a member)."""
    rows = conn.execute(
        "SELECT user_id, role FROM org_members WHERE org_id = ? "
        "AND user_id IN (SELECT value FROM json_each(?))",
        (org_id, json.dumps(user_ids)),
    ).fetchall()
    return {row["user_id"]: row["role"] for row in rows}


def orgs_counted_for(conn: sqlite3.Connection, user_id: str, archived_since: str) -> int:
    """The RHYTHM_MAX_ORGS_PER_USER count: orgs a user created that are live or were
    archived after `archived_since` (an archive keeps its files, so a create/delete
    loop must not be free)."""
    return int(
        conn.execute(
            "SELECT count(*) FROM orgs WHERE created_by = ? "
            "AND (archived_at IS NULL OR archived_at > ?)",
            (user_id, archived_since),
        ).fetchone()[0]
    )
