"""Time tracking: entries of positive seconds; the issue keeps their sum in `time_spent`.

`time_spent` changes in the entry's own transaction, so it always equals the
sum of the entries. Developers log time; the author of an entry or a project
admin deletes it.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.ids import iso, new_id, utcnow
from tracker.domain.models.comments import SubListQuery, TimeEntry, TimeEntryIn, TimeEntryPage
from tracker.errors import Forbidden, NotFound, ValidationFailed
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.comments import cursor_key, is_project_admin, issue_in, page_of
from tracker.services.runtime import Core
from tracker.storage import time_entries as time_sql

#: Clocks drift and people log the evening's work from another time zone; a
#: day of slack, no more, keeps typos such as 2052 out of the reports.
FUTURE_SLACK = timedelta(days=1)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


async def list_time_entries(
    core: Core, access: ProjectAccess, number: int, query: SubListQuery
) -> TimeEntryPage:
    """A page of entries (by logged_at) with the issue's totals overall and per user."""
    project, after = access.project, cursor_key(query)
    admin = is_project_admin(access)

    def fetch(conn: sqlite3.Connection) -> tuple[list[dict[str, Any]], int, dict[str, int]]:
        issue = issue_in(conn, project.id, number, include_deleted=admin)
        rows = time_sql.list_entries(conn, issue["id"], after, query.limit + 1)
        return rows, issue["time_spent"], time_sql.seconds_by_user(conn, issue["id"])

    rows, total, by_user = await read(core, access, fetch)
    rows, next_cursor = page_of(rows, query.limit, lambda r: [r["logged_at"], r["id"]])
    return TimeEntryPage(
        items=[TimeEntry(**row) for row in rows], next_cursor=next_cursor,
        total_seconds=total, by_user=by_user,
    )  # fmt: skip


async def log_time(
    core: Core, access: ProjectAccess, number: int, data: TimeEntryIn, actor: Actor
) -> TimeEntry:
    """Record time spent on an issue and add it to the issue's total."""
    return await mutate(
        core, access, actor, lambda uow: log_time_in(uow, access, number, data, actor)
    )


def log_time_in(
    uow: UnitOfWork, access: ProjectAccess, number: int, data: TimeEntryIn, actor: Actor,
    *, entry_id: str | None = None,
) -> TimeEntry:  # fmt: skip
    """The entry inside the caller's unit of work; `entry_id` made by an offline replica."""
    project = access.project
    logged_at = _logged_at(data.logged_at)
    issue = issue_in(uow.conn, project.id, number)
    row = {
        "id": entry_id or new_id(), "issue_id": issue["id"], "user_id": actor.user_id or "",
        "seconds_spent": data.seconds_spent, "description": data.description,
        "logged_at": logged_at or uow.at, "created_at": uow.at,
    }  # fmt: skip
    time_sql.insert_entry(uow.conn, row)
    time_sql.add_to_time_spent(uow.conn, issue["row_id"], data.seconds_spent, uow.at)
    uow.record(Entity.TIME_ENTRY, row["id"], Op.CREATE, project=project.id, new=row,
               issue=issue["id"])  # fmt: skip
    return TimeEntry(**row)


async def delete_time_entry(
    core: Core, access: ProjectAccess, number: int, entry_id: str, actor: Actor
) -> None:
    """Remove an entry (its author or a project admin) and take it off the issue's total."""
    await mutate(
        core, access, actor, lambda uow: delete_time_entry_in(uow, access, number, entry_id, actor)
    )


def delete_time_entry_in(
    uow: UnitOfWork, access: ProjectAccess, number: int, entry_id: str, actor: Actor
) -> None:
    """The removal inside the caller's unit of work (sync push applies it so)."""
    project, admin = access.project, is_project_admin(access)
    issue = issue_in(uow.conn, project.id, number)
    entry = time_sql.entry_of_issue(uow.conn, issue["id"], entry_id)
    if entry is None:
        raise NotFound("time entry not found")
    if entry["user_id"] != actor.user_id and not admin:
        raise Forbidden("only the person who logged the time or a project admin can delete it")
    time_sql.delete_entry(uow.conn, entry_id)
    time_sql.add_to_time_spent(uow.conn, issue["row_id"], -entry["seconds_spent"], uow.at)
    uow.record(Entity.TIME_ENTRY, entry_id, Op.DELETE, project=project.id, old=entry,
               issue=issue["id"])  # fmt: skip


def _logged_at(value: datetime | None) -> str | None:
    """The stored form of `logged_at` (UTC, ms, Z); naive times are taken as UTC."""
    if value is None:
        return None
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    if moment < EARLIEST or moment > utcnow() + FUTURE_SLACK:
        raise ValidationFailed([("logged_at", "must lie between 1970 and tomorrow")])
    return iso(moment)
