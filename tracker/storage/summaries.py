"""Small read models for events: project keys and issue summaries by id."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

#: The §7 event's `issue` object, rendered by SQLite.
_SUMMARY = """
SELECT i.id, json_object(
    'id', i.id, 'key', p.key || '-' || i.number, 'number', i.number, 'title', i.title,
    'status', s.name, 'priority', i.priority, 'type', i.type,
    'assignees', json((SELECT json_group_array(user_id) FROM
        (SELECT user_id FROM issue_assignees WHERE issue_id = i.id ORDER BY user_id))),
    'version', i.version)
FROM issues i
JOIN projects p ON p.id = i.project_id
JOIN stages s ON s.id = i.stage_id
WHERE i.id IN (SELECT value FROM json_each(?))
"""


def issue_summary_texts(conn: sqlite3.Connection, issue_ids: Sequence[str]) -> dict[str, str]:
    """{issue id: the summary {id, key, number, title, status, priority, type, assignees,
    version} as JSON text}: event bodies splice it in as SQLite rendered it (decoding
    and re-encoding it per event was half of rendering a catch-up, measured)."""
    if not issue_ids:
        return {}
    rows = conn.execute(_SUMMARY, (json.dumps(list(issue_ids)),)).fetchall()
    return {row[0]: row[1] for row in rows}


def project_keys(conn: sqlite3.Connection, project_ids: Sequence[str]) -> dict[str, str]:
    """{project id: key}, deleted projects included (their last events still name them)."""
    rows = conn.execute(
        "SELECT id, key FROM projects WHERE id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(project_ids)),),
    ).fetchall()
    return {row[0]: row[1] for row in rows}
