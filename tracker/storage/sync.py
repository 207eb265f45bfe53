"""SQL on the offline-sync bookkeeping: `sync_clients`, `sync_results`, `sync_id_aliases`
(tenant migration 0015; the protocol is docs/sync.md)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tracker.storage.issue_shape import ISSUE_OBJECT
from tracker.storage.rows import first_row


def insert_client(conn: sqlite3.Connection, row: dict[str, Any]) -> None:
    conn.execute(
        """INSERT INTO sync_clients (id, user_id, device, scope, sent_projects,
               last_mutation_id, schema, created_at, last_seen_at)
           VALUES (:id, :user_id, :device, :scope, '[]', 0, :schema, :at, :at)""",
        row,
    )


def client(conn: sqlite3.Connection, client_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM sync_clients WHERE id = ?", (client_id,)).fetchone()
    return None if row is None else dict(row)


def update_client(
    conn: sqlite3.Connection, client_id: str, scope: list[str], device: str | None, at: str
) -> None:
    conn.execute(
        """UPDATE sync_clients SET scope = ?, device = coalesce(?, device), last_seen_at = ?
           WHERE id = ?""",
        (json.dumps(scope), device, at, client_id),
    )


def revoke_client(conn: sqlite3.Connection, client_id: str, at: str) -> None:
    conn.execute(
        "UPDATE sync_clients SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?",
        (at, client_id),
    )


def set_sent_projects(
    conn: sqlite3.Connection, client_id: str, projects: list[str], at: str
) -> None:
    conn.execute(
        "UPDATE sync_clients SET sent_projects = ?, last_seen_at = ? WHERE id = ?",
        (json.dumps(sorted(projects)), at, client_id),
    )


def advance_mutation(conn: sqlite3.Connection, client_id: str, mutation_id: int, at: str) -> None:
    """Move the client's counter to `mutation_id` (only forwards, by exactly one)."""
    cursor = conn.execute(
        """UPDATE sync_clients SET last_mutation_id = ?, last_seen_at = ?
           WHERE id = ? AND last_mutation_id = ?""",
        (mutation_id, at, client_id, mutation_id - 1),
    )
    if cursor.rowcount != 1:
        raise RuntimeError("sync client counter moved concurrently")


def store_result(
    conn: sqlite3.Connection, client_id: str, mutation_id: int, hash_: str, result: str, at: str
) -> None:
    conn.execute(
        "INSERT INTO sync_results (client_id, mutation_id, hash, result, at) "
        "VALUES (?, ?, ?, ?, ?)",
        (client_id, mutation_id, hash_, result, at),
    )


def stored_results(
    conn: sqlite3.Connection, client_id: str, first: int, last: int
) -> dict[int, tuple[str, str]]:
    """{mutation_id: (hash, result JSON)} for ids in [first, last]."""
    rows = conn.execute(
        """SELECT mutation_id, hash, result FROM sync_results
           WHERE client_id = ? AND mutation_id BETWEEN ? AND ?""",
        (client_id, first, last),
    ).fetchall()
    return {int(r[0]): (str(r[1]), str(r[2])) for r in rows}


def add_alias(conn: sqlite3.Connection, client_id: str, requested: str, actual: str) -> None:
    conn.execute(
        """INSERT OR REPLACE INTO sync_id_aliases (client_id, requested_id, actual_id)
           VALUES (?, ?, ?)""",
        (client_id, requested, actual),
    )


def aliases(conn: sqlite3.Connection, client_id: str) -> dict[str, str]:
    rows = conn.execute(
        "SELECT requested_id, actual_id FROM sync_id_aliases WHERE client_id = ?", (client_id,)
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def live_projects(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Every live project as (id, key, name)."""
    rows = conn.execute("SELECT id, key, name FROM projects WHERE deleted_at IS NULL").fetchall()
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


def issue_counts(conn: sqlite3.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT project_id, count(*) FROM issues WHERE deleted_at IS NULL GROUP BY project_id"
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


# --- snapshot pages ----------------------------------------------------------------------
# Small catalogues (projects, stages, tags, sprints, custom fields, project members; all
# before the issues, whose images name sprints and fields) are paged by id within the
# whole scope. What hangs off issues is paged one project at a time in (issue number, id)
# order, so every page is an index range on `issues_number (project_id, number)`: ordering
# a project's rows by their UUID instead cost a full scan and sort of the project per page.

_IN = "IN (SELECT value FROM json_each(:projects))"
_ISSUE_JSON = ISSUE_OBJECT.replace("?1", "p.key")

#: kind -> SQL over the scope's projects (JSON array :projects), after id :after.
CATALOGUE_SQL: dict[str, str] = {
    "project": f"""SELECT p.id, p.id, json_object('id', p.id, 'key', p.key, 'name', p.name,
            'description', p.description, 'visibility', p.visibility,
            'created_at', p.created_at, 'updated_at', p.updated_at, 'version', p.version)
        FROM projects p WHERE p.id {_IN} AND p.id > :after ORDER BY p.id LIMIT :limit""",
    "stage": f"""SELECT s.id, s.project_id, json_object('id', s.id, 'project_id', s.project_id,
            'name', s.name, 'category', s.category, 'position', s.position,
            'created_at', s.created_at, 'updated_at', s.updated_at)
        FROM stages s WHERE s.project_id {_IN} AND s.id > :after ORDER BY s.id LIMIT :limit""",
    "tag": f"""SELECT t.id, t.project_id, json_object('id', t.id, 'project_id', t.project_id,
            'name', t.name, 'color', t.color, 'created_at', t.created_at)
        FROM tags t WHERE t.project_id {_IN} AND t.id > :after ORDER BY t.id LIMIT :limit""",
    "sprint": f"""SELECT s.id, s.project_id, json_object('id', s.id, 'project_id', s.project_id,
            'name', s.name, 'goal', s.goal, 'state', s.state, 'starts_at', s.starts_at,
            'ends_at', s.ends_at, 'started_at', s.started_at, 'completed_at', s.completed_at,
            'created_at', s.created_at, 'updated_at', s.updated_at, 'version', s.version)
        FROM sprints s WHERE s.project_id {_IN} AND s.id > :after ORDER BY s.id LIMIT :limit""",
    "custom_field": f"""SELECT f.id, f.project_id, json_object('id', f.id,
            'project_id', f.project_id, 'name', f.name, 'type', f.type,
            'options', json(f.options), 'required', json(CASE WHEN f.required THEN 'true'
            ELSE 'false' END), 'position', f.position, 'created_at', f.created_at,
            'updated_at', f.updated_at)
        FROM custom_fields f WHERE f.project_id {_IN} AND f.id > :after
        ORDER BY f.id LIMIT :limit""",
    # keyed by "project:user"; the person's email and name are added from the system
    # database by the snapshot service (MEMBER_KIND), as GET .../members shows them
    "project_member": f"""SELECT m.project_id || ':' || m.user_id, m.project_id,
            json_object('project_id', m.project_id, 'user_id', m.user_id, 'role', m.role,
            'created_at', m.created_at)
        FROM project_members m WHERE m.project_id {_IN}
            AND m.project_id || ':' || m.user_id > :after
        ORDER BY 1 LIMIT :limit""",
    # the assignees of issues in scope, who may have left the org since: their names as
    # GET .../issues/{n}/assignees shows them (added like members'). Reporters and
    # comment authors are not: REST names them by id only.
    "user": f"""SELECT DISTINCT a.user_id, NULL, json_object('id', a.user_id)
        FROM issue_assignees a JOIN issues i ON i.id = a.issue_id
        WHERE i.project_id {_IN} AND a.user_id > :after
        ORDER BY a.user_id LIMIT :limit""",
}
#: Catalogue kinds whose lines get the person's email and display name from the system
#: database (tracker.services.sync_snapshot): kind -> the key of the user id in `data`.
PEOPLE_KINDS: dict[str, str] = {"project_member": "user_id", "user": "id"}

_AFTER = "i.project_id = :project AND i.deleted_at IS NULL AND i.number >= :n"

#: kind -> SQL over one project (:project) after the position (:n issue number, :id):
#: rows of (id, project id, JSON, version or NULL, issue number).
PER_ISSUE_SQL: dict[str, str] = {
    "issue": f"""SELECT i.id, i.project_id, {_ISSUE_JSON}, i.version, i.number
        FROM issues i JOIN projects p ON p.id = i.project_id
        JOIN stages s ON s.id = i.stage_id LEFT JOIN issues par ON par.id = i.parent_id
        WHERE {_AFTER} AND (i.number > :n OR i.id > :id)
        ORDER BY i.number, i.id LIMIT :limit""",
    "comment": f"""SELECT c.id, i.project_id, json_object('id', c.id, 'issue_id', c.issue_id,
            'author', c.author, 'body', c.body, 'created_at', c.created_at,
            'updated_at', c.updated_at, 'version', c.version), c.version, i.number
        FROM issues i JOIN comments c ON c.issue_id = i.id
        WHERE {_AFTER} AND (i.number > :n OR c.id > :id)
        ORDER BY i.number, c.id LIMIT :limit""",
    "time_entry": f"""SELECT e.id, i.project_id, json_object('id', e.id, 'issue_id', e.issue_id,
            'user_id', e.user_id, 'seconds_spent', e.seconds_spent,
            'description', e.description, 'logged_at', e.logged_at, 'created_at', e.created_at),
            NULL, i.number
        FROM issues i JOIN time_entries e ON e.issue_id = i.id
        WHERE {_AFTER} AND (i.number > :n OR e.id > :id)
        ORDER BY i.number, e.id LIMIT :limit""",
    "relation": f"""SELECT r.id, i.project_id, json_object('id', r.id, 'pair_id', r.pair_id,
            'source_id', r.source_id, 'target_id', r.target_id, 'type', r.type,
            'created_by', r.created_by, 'created_at', r.created_at), NULL, i.number
        FROM issues i JOIN relations r ON r.source_id = i.id
        WHERE {_AFTER} AND (i.number > :n OR r.id > :id)
        ORDER BY i.number, r.id LIMIT :limit""",
    "attachment": f"""SELECT a.id, a.project_id, json_object('id', a.id,
            'project_id', a.project_id, 'issue_id', a.issue_id, 'comment_id', a.comment_id,
            'filename', a.filename, 'content_type', a.content_type, 'size', a.size,
            'sha256', a.sha256, 'uploaded_by', a.uploaded_by, 'created_at', a.created_at),
            NULL, i.number
        FROM issues i JOIN attachments a ON a.issue_id = i.id
        WHERE {_AFTER} AND a.deleted_at IS NULL AND (i.number > :n OR a.id > :id)
        ORDER BY i.number, a.id LIMIT :limit""",
}
#: The order pages walk the kinds in (a page token names a kind by its index here).
SNAPSHOT_KINDS: tuple[str, ...] = (*CATALOGUE_SQL, *PER_ISSUE_SQL)


def catalogue_rows(
    conn: sqlite3.Connection, kind: str, projects: str, after: str, limit: int
) -> list[sqlite3.Row]:
    """Up to `limit` rows of a catalogue kind after id `after` (projects: JSON array)."""
    return conn.execute(
        CATALOGUE_SQL[kind], {"projects": projects, "after": after, "limit": limit}
    ).fetchall()


def per_issue_rows(
    conn: sqlite3.Connection, kind: str, project_id: str, number: int, after: str, limit: int
) -> list[sqlite3.Row]:
    """Up to `limit` rows of one project after position (issue number, id)."""
    return conn.execute(
        PER_ISSUE_SQL[kind],
        {"project": project_id, "n": number, "id": after, "limit": limit},
    ).fetchall()


# --- lookups by id for pushed mutations --------------------------------------------------


def issue_by_id(conn: sqlite3.Connection, issue_id: str) -> sqlite3.Row | None:
    """The issue (deleted ones too) with its project key."""
    return first_row(
        conn.execute(
            "SELECT i.*, p.key AS project_key FROM issues i JOIN projects p ON p.id = i.project_id "
            "WHERE i.id = ?",
            (issue_id,),
        )
    )


def project_key_of(conn: sqlite3.Connection, project_id: str) -> str | None:
    row = conn.execute(
        "SELECT key FROM projects WHERE id = ? AND deleted_at IS NULL", (project_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def comment_by_id(conn: sqlite3.Connection, comment_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            "SELECT c.*, i.project_id, i.number, i.deleted_at AS issue_deleted_at, "
            "p.key AS project_key FROM comments c JOIN issues i ON i.id = c.issue_id "
            "JOIN projects p ON p.id = i.project_id "
            "WHERE c.id = ?",
            (comment_id,),
        )
    )


def exists(conn: sqlite3.Connection, table: str, entity_id: str) -> bool:
    assert table in {"issues", "comments", "tags", "time_entries"}
    return conn.execute(f"SELECT 1 FROM {table} WHERE id = ?", (entity_id,)).fetchone() is not None


def stage_of_project(
    conn: sqlite3.Connection, project_id: str, stage_id: str
) -> sqlite3.Row | None:
    return first_row(
        conn.execute("SELECT * FROM stages WHERE id = ? AND project_id = ?", (stage_id, project_id))
    )


def last_change_of(
    conn: sqlite3.Connection, entity: str, entity_id: str, field: str
) -> sqlite3.Row | None:
    """The newest change row that set `field` of the entity (who overwrote what, when)."""
    return first_row(
        conn.execute(
            "SELECT seq, actor, at FROM changes WHERE entity = ? AND entity_id = ? AND field = ? "
            "ORDER BY seq DESC LIMIT 1",
            (entity, entity_id, field),
        )
    )


def tags_by_ids(conn: sqlite3.Connection, project_id: str, ids: list[str]) -> dict[str, str]:
    """{tag id: name} for the ids that are tags of the project."""
    rows = conn.execute(
        "SELECT id, name FROM tags WHERE project_id = ? AND id IN (SELECT value FROM json_each(?))",
        (project_id, json.dumps(ids)),
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def tag_named(conn: sqlite3.Connection, project_id: str, name: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            "SELECT * FROM tags WHERE project_id = ? AND name = ? COLLATE NOCASE",
            (project_id, name),
        )
    )


def issues_created_by_client(
    conn: sqlite3.Connection, client_id: str, suffixes: list[str]
) -> dict[str, tuple[str, int]]:
    """{5-hex suffix: (project key, number)} of live issues this client created whose id
    ends with one of the suffixes (provisional keys such as WEB-~3fa9c)."""
    rows = conn.execute(
        """SELECT i.id, p.key, i.number FROM changes c
           JOIN issues i ON i.id = c.entity_id JOIN projects p ON p.id = i.project_id
           WHERE c.client_id = ? AND c.entity = 'issue' AND c.op = 'create'
             AND substr(c.entity_id, -5) IN (SELECT value FROM json_each(?))""",
        (client_id, json.dumps(suffixes)),
    ).fetchall()
    return {str(r[0])[-5:]: (str(r[1]), int(r[2])) for r in rows}


def relation_side(conn: sqlite3.Connection, pair_id: str, source_id: str) -> sqlite3.Row | None:
    """The side of link `pair_id` seen from issue `source_id`."""
    return first_row(
        conn.execute(
            "SELECT * FROM relations WHERE pair_id = ? AND source_id = ?", (pair_id, source_id)
        )
    )


def relation_exists(conn: sqlite3.Connection, source_id: str, target_id: str, kind: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM relations WHERE source_id = ? AND target_id = ? AND type = ?",
        (source_id, target_id, kind),
    ).fetchone()
    return row is not None


def time_entry_by_id(conn: sqlite3.Connection, entry_id: str) -> sqlite3.Row | None:
    return first_row(
        conn.execute(
            "SELECT e.*, i.number, p.key AS project_key FROM time_entries e "
            "JOIN issues i ON i.id = e.issue_id JOIN projects p ON p.id = i.project_id "
            "WHERE e.id = ?",
            (entry_id,),
        )
    )


def prune_results(conn: sqlite3.Connection, client_id: str, before: str) -> int:
    """Forget a client's stored answers older than `before` (a retry of one of those
    is answered `result_expired`)."""
    return conn.execute(
        "DELETE FROM sync_results WHERE client_id = ? AND at < ?", (client_id, before)
    ).rowcount


def touch_client(conn: sqlite3.Connection, client_id: str, at: str) -> None:
    """The client was seen (a pull, a snapshot): what the TTL sweep goes by."""
    conn.execute("UPDATE sync_clients SET last_seen_at = ? WHERE id = ?", (at, client_id))


def sweep_stale_clients(conn: sqlite3.Connection, seen_before: str, at: str) -> int:
    """Revoke every client not seen since `seen_before`, and drop what revoked clients
    kept (stored answers, tag aliases: they can never push again). Returns how many were
    revoked now."""
    revoked = conn.execute(
        "UPDATE sync_clients SET revoked_at = ? WHERE revoked_at IS NULL AND last_seen_at < ?",
        (at, seen_before),
    ).rowcount
    gone = "SELECT id FROM sync_clients WHERE revoked_at IS NOT NULL"
    conn.execute(f"DELETE FROM sync_results WHERE client_id IN ({gone})")
    conn.execute(f"DELETE FROM sync_id_aliases WHERE client_id IN ({gone})")
    return int(revoked)
