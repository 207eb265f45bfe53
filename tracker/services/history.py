"""An issue's history: every change row about it, newest first (SPEC §4).

Rows come from the one change log, found through the issue_changes table
that UnitOfWork.record(issue=...) fills, so the issue's own field changes and
those of its tags, assignees, comments, relations and time entries read as one
timeline.
"""

from __future__ import annotations

import sqlite3

from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.models.base import Page
from tracker.domain.models.issues import HistoryItem, PageQuery
from tracker.errors import NotFound
from tracker.services.access import ProjectAccess, read
from tracker.services.runtime import Core
from tracker.storage import changes as change_sql
from tracker.storage import issues as issue_sql
from tracker.storage.changes import row_to_change


def to_item(row: sqlite3.Row) -> HistoryItem:
    change = row_to_change(row)
    return HistoryItem(
        seq=change.seq, at=change.at, actor=change.actor, origin=change.origin,
        entity=change.entity, entity_id=change.entity_id, op=change.op, field=change.field,
        old=change.old, new=change.new, batch=change.batch,
    )  # fmt: skip


async def issue_history(
    core: Core, access: ProjectAccess, number: int, query: PageQuery
) -> Page[HistoryItem]:
    """A page of the issue's changes, newest first; the cursor is the last seq shown."""
    project = access.project
    before = decode_cursor(query.cursor, (int,))[0] if query.cursor else None

    def fetch(conn: sqlite3.Connection) -> list[sqlite3.Row]:
        issue = issue_sql.issue_by_number(conn, project.id, number)
        if issue is None:
            raise NotFound("issue not found")
        return change_sql.issue_changes(conn, issue["id"], before, query.limit + 1)

    rows = await read(core, access, fetch)
    items = [to_item(r) for r in rows[: query.limit]]
    cursor = encode_cursor([items[-1].seq]) if len(rows) > query.limit else None
    return Page[HistoryItem](items=items, next_cursor=cursor)
