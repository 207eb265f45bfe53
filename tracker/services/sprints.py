"""Sprints: plan, start, complete (leftovers to the backlog or another sprint), burndown.

State machine (SPEC §6): planned -> active -> completed, at most one active
sprint per project (also a unique partial index, so no race can make two).
Every state change is logged as a `sprint` update of field `state`, so the
event layer derives `sprint.started` / `sprint.completed` from the log alone.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import new_id, now_iso
from tracker.domain.models.base import Page
from tracker.domain.models.workflow import (
    Burndown,
    BurndownDay,
    Sprint,
    SprintComplete,
    SprintIn,
    SprintPatch,
    SprintQuery,
)
from tracker.domain.workflow import (
    IssueState,
    IssueStep,
    burndown,
    check_completable,
    check_dates,
    check_startable,
    sprint_days,
)
from tracker.errors import Conflict, NotFound, ValidationFailed
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.storage import sprints as sprint_sql

BACKLOG = "backlog"


def to_sprint(row: sqlite3.Row | dict[str, Any]) -> Sprint:
    return Sprint(**{name: row[name] for name in Sprint.model_fields})


def _sprint_or_404(conn: sqlite3.Connection, project_id: str, sprint_id: str) -> sqlite3.Row:
    row = sprint_sql.sprint_by_id(conn, project_id, sprint_id)
    if row is None:
        raise NotFound("sprint not found")
    return row


async def create_sprint(core: Core, access: ProjectAccess, data: SprintIn, actor: Actor) -> Sprint:
    project = access.project
    check_dates(data.starts_at, data.ends_at)

    def work(uow: UnitOfWork) -> Sprint:
        row: dict[str, Any] = {"id": new_id(), "project_id": project.id, "name": data.name,
               "goal": data.goal,
               "state": "planned", "starts_at": data.starts_at, "ends_at": data.ends_at,
               "started_at": None, "completed_at": None, "created_at": uow.at,
               "updated_at": uow.at, "version": 1}  # fmt: skip
        sprint_sql.insert_sprint(uow.conn, row)
        uow.record(Entity.SPRINT, row["id"], Op.CREATE, project=project.id, new=row, version=1)
        return to_sprint(row)

    return await mutate(core, access, actor, work)


async def list_sprints(core: Core, access: ProjectAccess, query: SprintQuery) -> Page[Sprint]:
    """Sprints in creation order; `?state=` narrows to one state."""
    project = access.project
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else ""
    rows = await read(core, access, lambda conn: sprint_sql.list_sprints(
        conn, project.id, query.state, after, query.limit + 1))  # fmt: skip
    items = [to_sprint(row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return Page[Sprint](items=items, next_cursor=encode_cursor([items[-1].id]) if more else None)


async def get_sprint(core: Core, access: ProjectAccess, sprint_id: str) -> Sprint:
    project = access.project
    row = await read(core, access, lambda conn: _sprint_or_404(conn, project.id, sprint_id))
    return to_sprint(row)


async def update_sprint(
    core: Core, access: ProjectAccess, sprint_id: str, data: SprintPatch, actor: Actor
) -> Sprint:
    """Edit name, goal or dates (null clears a date of a planned sprint); a completed
    sprint is history and stays as it ended (409)."""
    project = access.project
    fields = data.model_dump(exclude_unset=True)
    if fields.get("name", "") is None or fields.get("goal", "") is None:
        raise ValidationFailed([(n, "must not be null") for n in ("name", "goal")
                                if n in fields and fields[n] is None])  # fmt: skip

    def work(uow: UnitOfWork) -> Sprint:
        before = dict(_sprint_or_404(uow.conn, project.id, sprint_id))
        if before["state"] == "completed":
            raise Conflict("a completed sprint cannot be changed")
        after = {**before, **fields}
        check_dates(after["starts_at"], after["ends_at"])
        if before["state"] == "active" and None in (after["starts_at"], after["ends_at"]):
            raise ValidationFailed([("starts_at", "an active sprint keeps both dates")])
        changed = {k: v for k, v in fields.items() if before[k] != v}
        if changed:
            sprint_sql.update_sprint(uow.conn, sprint_id, {**changed, "updated_at": uow.at})
            uow.record_fields(Entity.SPRINT, sprint_id, project=project.id, before=before,
                              after=changed, version=before["version"] + 1)  # fmt: skip
        return to_sprint(_sprint_or_404(uow.conn, project.id, sprint_id))

    return await mutate(core, access, actor, work)


async def start_sprint(core: Core, access: ProjectAccess, sprint_id: str, actor: Actor) -> Sprint:
    """planned -> active; 409 while another sprint of the project is active."""
    project = access.project

    def work(uow: UnitOfWork) -> Sprint:
        before = dict(_sprint_or_404(uow.conn, project.id, sprint_id))
        check_startable(before["state"], before["starts_at"], before["ends_at"])
        active = sprint_sql.active_sprint(uow.conn, project.id)
        if active is not None:
            raise Conflict(f"sprint '{active['name']}' is already active; complete it first",
                           active_sprint_id=active["id"])  # fmt: skip
        changed = {"state": "active", "started_at": uow.at}
        _set_state(uow, project.id, before, changed)
        return to_sprint(_sprint_or_404(uow.conn, project.id, sprint_id))

    return await mutate(core, access, actor, work)


def _set_state(uow: UnitOfWork, project_id: str, before: dict[str, Any], changed: dict) -> None:
    """Write a state change; `state` is logged first so it leads its batch."""
    sprint_sql.update_sprint(uow.conn, before["id"], {**changed, "updated_at": uow.at})
    uow.record_fields(Entity.SPRINT, before["id"], project=project_id, before=before,
                      after=changed, version=before["version"] + 1)  # fmt: skip


async def complete_sprint(
    core: Core, access: ProjectAccess, sprint_id: str, data: SprintComplete, actor: Actor
) -> Sprint:
    """active -> completed; issues not in a `done` stage go to the backlog or to the named
    sprint (planned or active), each move logged on the issue."""
    project = access.project

    def work(uow: UnitOfWork) -> Sprint:
        before = dict(_sprint_or_404(uow.conn, project.id, sprint_id))
        check_completable(before["state"])
        target = _leftover_target(uow.conn, project.id, sprint_id, data.move_to)
        _set_state(uow, project.id, before, {"state": "completed", "completed_at": uow.at})
        for issue in sprint_sql.unfinished_issues(uow.conn, sprint_id):
            sprint_sql.set_issue_sprint(uow.conn, issue["row_id"], target, uow.at)
            uow.record(Entity.ISSUE, issue["id"], Op.UPDATE, project=project.id, field="sprint_id",
                       old=sprint_id, new=target, version=issue["version"] + 1,
                       issue=issue["id"])  # fmt: skip
        return to_sprint(_sprint_or_404(uow.conn, project.id, sprint_id))

    return await mutate(core, access, actor, work)


def _leftover_target(
    conn: sqlite3.Connection, project_id: str, sprint_id: str, move_to: str
) -> str | None:
    if move_to == BACKLOG:
        return None
    row = sprint_sql.sprint_by_id(conn, project_id, move_to)
    if row is None or move_to == sprint_id:
        raise ValidationFailed([("move_to", "must be 'backlog' or another sprint's id")])
    if row["state"] == "completed":
        raise Conflict(f"sprint '{row['name']}' is completed; it cannot take the leftovers")
    return move_to


# --- burndown ---------------------------------------------------------------------------------

_STEP_FIELDS = ("sprint_id", "resolved_at", "estimate")


def _steps(rows: list[sqlite3.Row]) -> list[IssueStep]:
    """Change rows -> the steps the burndown undoes (other fields do not matter to it)."""
    steps = []
    for row in rows:
        op, field, old = row["op"], row["field"], row["old"]
        kind = {Op.CREATE: "created", Op.DELETE: "deleted", Op.RESTORE: "restored"}.get(op)
        if op == Op.UPDATE and field in _STEP_FIELDS:
            kind = field
        elif op == Op.UPDATE and field == "deleted_at":
            kind = "deleted" if old is None else "restored"
        if kind is not None:
            value = json.loads(old) if old is not None else None
            steps.append(IssueStep(row["seq"], row["at"], row["entity_id"], kind, value))
    return steps


def _burndown(conn: sqlite3.Connection, sprint: sqlite3.Row) -> Burndown:
    if sprint["starts_at"] is None or sprint["ends_at"] is None:
        return Burndown(sprint_id=sprint["id"], days=[])
    rows = sprint_sql.issues_ever_in_sprint(conn, sprint["id"])
    current = {r["id"]: IssueState(True, r["sprint_id"], r["resolved_at"], r["estimate"],
                                   r["deleted_at"] is not None) for r in rows}  # fmt: skip
    steps = _steps(sprint_sql.issue_changes(conn, list(current)))
    completed = sprint["state"] == "completed"
    points = burndown(
        sprint["id"], sprint_days(sprint["starts_at"], sprint["ends_at"]), current, steps,
        until=sprint["completed_at"] if completed else now_iso(),
        cap_seq=sprint_sql.completion_seq(conn, sprint["id"]) if completed else None,
    )  # fmt: skip
    days = [BurndownDay(date=p.day.isoformat(), remaining_issues=p.remaining_issues,
                        remaining_estimate=p.remaining_estimate, scope_issues=p.scope_issues)
            for p in points]  # fmt: skip
    return Burndown(sprint_id=sprint["id"], days=days)


async def sprint_burndown(core: Core, access: ProjectAccess, sprint_id: str) -> Burndown:
    """Per sprint day: issues (and minutes of estimate) not yet in a done stage, rebuilt
    from the change log, so a late or back-dated view shows what was true each day."""
    project = access.project

    def run(conn: sqlite3.Connection) -> Burndown:
        return _burndown(conn, _sprint_or_404(conn, project.id, sprint_id))

    return await read(core, access, run)


async def sprint_ref(core: Core, access: ProjectAccess, ref: str) -> str:
    """A sprint named on the command line by id or by name."""
    project = access.project

    def find(conn: sqlite3.Connection) -> sqlite3.Row | None:
        return sprint_sql.sprint_by_id(conn, project.id, ref) or sprint_sql.sprint_by_name(
            conn, project.id, ref
        )

    row = await read(core, access, find)
    if row is None:
        raise NotFound(f"no sprint '{ref}' in {project.key}")
    return str(row["id"])
