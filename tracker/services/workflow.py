"""Stages (board columns) and transition rules; the move checks the issue service calls.

Stage positions are kept dense (0..n-1): every insert, reorder and delete
renumbers the few stages involved and logs each changed position, so a
client replaying the log sees exactly the order the server has.
"""

from __future__ import annotations

import sqlite3
from typing import Any, TypeVar

from fractional_indexing import generate_key_between, generate_n_keys_between

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.ids import new_id
from tracker.domain.models.workflow import (
    Stage,
    StageIn,
    StageOrder,
    StagePatch,
    TransitionRule,
    Transitions,
    TransitionsIn,
)
from tracker.domain.permissions import ProjectRole
from tracker.domain.workflow import (
    MAX_STAGES,
    check_order,
    check_rules,
    check_transition,
    is_done,
    resolved_at_after,
)
from tracker.errors import Conflict, NotFound, ValidationFailed
from tracker.services.access import ProjectAccess, ProjectRef, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.storage import boards as board_sql
from tracker.storage import issues as issue_sql
from tracker.storage import stages as stage_sql

T = TypeVar("T")


def to_stage(row: sqlite3.Row | dict[str, Any]) -> Stage:
    return Stage(
        id=row["id"], name=row["name"], category=row["category"], position=row["position"],
        created_at=row["created_at"], updated_at=row["updated_at"],
    )  # fmt: skip


# --- stages -------------------------------------------------------------------------------


async def list_stages(core: Core, access: ProjectAccess) -> list[Stage]:
    project = access.project
    rows = await read(core, access, lambda conn: stage_sql.list_stages(conn, project.id))
    return [to_stage(row) for row in rows]


def _stage_or_404(conn: sqlite3.Connection, project_id: str, stage_id: str) -> sqlite3.Row:
    row = stage_sql.stage_by_id(conn, project_id, stage_id)
    if row is None:
        raise NotFound("stage not found")
    return row


def _renumber(uow: UnitOfWork, project_id: str, ordered: list[str], now: str) -> None:
    """Give the stages positions 0..n-1 in the given order; log each position that moved."""
    current = {row["id"]: row["position"] for row in stage_sql.list_stages(uow.conn, project_id)}
    for position, stage_id in enumerate(ordered):
        if stage_id in current and current[stage_id] != position:
            stage_sql.update_stage(uow.conn, stage_id, {"position": position, "updated_at": now})
            uow.record(Entity.STAGE, stage_id, Op.UPDATE, project=project_id, field="position",
                       old=current.get(stage_id), new=position)  # fmt: skip


async def create_stage(core: Core, access: ProjectAccess, data: StageIn, actor: Actor) -> Stage:
    """Add a column at `position` (default: last); later columns shift right."""
    project = access.project

    def work(uow: UnitOfWork) -> Stage:
        ordered = [row["id"] for row in stage_sql.list_stages(uow.conn, project.id)]
        if len(ordered) >= MAX_STAGES:
            raise Conflict(f"a project has at most {MAX_STAGES} stages")
        if stage_sql.name_taken(uow.conn, project.id, data.name):
            raise Conflict(f"a stage named '{data.name}' already exists")
        position = len(ordered) if data.position is None else min(data.position, len(ordered))
        stage = {"id": new_id(), "project_id": project.id, "name": data.name,
                 "category": data.category, "position": position,
                 "created_at": uow.at, "updated_at": uow.at}  # fmt: skip
        ordered.insert(position, str(stage["id"]))
        _renumber(uow, project.id, ordered, uow.at)  # shifts the later columns first
        stage_sql.insert_stage(uow.conn, stage)
        uow.record(Entity.STAGE, str(stage["id"]), Op.CREATE, project=project.id, new=stage)
        return to_stage(stage)

    return await mutate(core, access, actor, work)


async def update_stage(
    core: Core, access: ProjectAccess, stage_id: str, data: StagePatch, actor: Actor
) -> Stage:
    """Rename, recategorise or move one stage.

    A category change across `done` sets (or clears) resolved_at of the issues
    in the stage, logged per issue, so resolved_at keeps meaning "in a done
    stage" (the backlog and burndown rely on it).
    """
    project = access.project
    fields = data.model_dump(exclude_unset=True, exclude_none=True)

    def work(uow: UnitOfWork) -> Stage:
        before = dict(_stage_or_404(uow.conn, project.id, stage_id))
        name = fields.get("name")
        if name is not None and stage_sql.name_taken(uow.conn, project.id, name, stage_id):
            raise Conflict(f"a stage named '{name}' already exists")
        changes = {k: v for k, v in fields.items() if k != "position" and before[k] != v}
        if changes:
            stage_sql.update_stage(uow.conn, stage_id, {**changes, "updated_at": uow.at})
            uow.record_fields(
                Entity.STAGE, stage_id, project=project.id, before=before, after=changes
            )
        if is_done(before["category"]) != is_done(changes.get("category", before["category"])):
            _resolve_column(uow, project.id, before, changes["category"])
        if "position" in fields:
            ordered = [r["id"] for r in stage_sql.list_stages(uow.conn, project.id)]
            ordered.remove(stage_id)
            ordered.insert(min(fields["position"], len(ordered)), stage_id)
            _renumber(uow, project.id, ordered, uow.at)
        return to_stage(_stage_or_404(uow.conn, project.id, stage_id))

    return await mutate(core, access, actor, work)


async def reorder_stages(
    core: Core, access: ProjectAccess, data: StageOrder, actor: Actor
) -> list[Stage]:
    """Put every stage in the given order (the list must name each exactly once)."""
    project = access.project

    def work(uow: UnitOfWork) -> list[Stage]:
        current = [row["id"] for row in stage_sql.list_stages(uow.conn, project.id)]
        check_order(current, data.order)
        _renumber(uow, project.id, data.order, uow.at)
        return [to_stage(row) for row in stage_sql.list_stages(uow.conn, project.id)]

    return await mutate(core, access, actor, work)


async def delete_stage(
    core: Core, access: ProjectAccess, stage_id: str, move_to: str | None, actor: Actor
) -> None:
    """Delete a stage; its issues (soft-deleted ones too) first move to `move_to`.

    Without a target a stage in use is a 409 and nothing changes. The move is
    an admin action, so transition rules do not apply to it; rules that name
    the stage go with it.
    """
    project = access.project

    def work(uow: UnitOfWork) -> None:
        stage = _stage_or_404(uow.conn, project.id, stage_id)
        ordered = [row["id"] for row in stage_sql.list_stages(uow.conn, project.id)]
        if len(ordered) == 1:
            raise Conflict("a project needs at least one stage")
        target = _target_stage(uow.conn, project.id, stage_id, move_to)
        in_use = stage_sql.stage_in_use(uow.conn, project.id, stage_id)
        if in_use and target is None:
            raise Conflict(f"the stage holds {in_use} issue(s); name a stage to move them to "
                           "with ?move_to=<stage id>", in_use=in_use)  # fmt: skip
        if in_use and target is not None:
            _move_column(uow, project.id, stage, target)
        _drop_rules_of(uow, project.id, stage_id)
        stage_sql.delete_stage(uow.conn, stage_id)
        uow.record(Entity.STAGE, stage_id, Op.DELETE, project=project.id, old=dict(stage))
        ordered.remove(stage_id)
        _renumber(uow, project.id, ordered, uow.at)

    await mutate(core, access, actor, work)


def _target_stage(
    conn: sqlite3.Connection, project_id: str, stage_id: str, move_to: str | None
) -> sqlite3.Row | None:
    if move_to is None:
        return None
    target = stage_sql.stage_by_id(conn, project_id, move_to)
    if target is None or move_to == stage_id:
        raise ValidationFailed([("move_to", "must name another stage of this project")])
    return target


def _resolve_column(uow: UnitOfWork, project_id: str, stage: dict[str, Any], category: str) -> None:
    for issue in stage_sql.issues_in_stage(uow.conn, stage["id"]):
        resolved = resolved_at_after(stage["category"], category, issue["resolved_at"], uow.at)
        if resolved != issue["resolved_at"]:
            version = stage_sql.set_resolved_at(uow.conn, issue["row_id"], resolved, uow.at)
            uow.record(
                Entity.ISSUE, issue["id"], Op.UPDATE, project=project_id, field="resolved_at",
                old=issue["resolved_at"], new=resolved, version=version, issue=issue["id"],
            )  # fmt: skip


def _move_column(uow: UnitOfWork, project_id: str, stage: sqlite3.Row, target: sqlite3.Row) -> None:
    """Append the column's issues, in their order, below the target column's cards.

    Logged like a status change made through PATCH (field `status` by stage
    name, and `resolved_at` when the category crosses `done`).
    """
    issues = stage_sql.issues_in_stage(uow.conn, stage["id"])
    last = board_sql.last_rank(uow.conn, project_id, target["id"])
    ranks = generate_n_keys_between(last, None, len(issues))
    for issue, rank in zip(issues, ranks, strict=True):
        resolved = resolved_at_after(stage["category"], target["category"],
                                     issue["resolved_at"], uow.at)  # fmt: skip
        values = {"stage_id": target["id"], "rank": rank, "resolved_at": resolved}
        version = stage_sql.move_issue(uow.conn, issue["row_id"], values, uow.at)
        before = {"status": stage["name"], "resolved_at": issue["resolved_at"]}
        after = {"status": target["name"], "resolved_at": resolved}
        uow.record_fields(Entity.ISSUE, issue["id"], project=project_id, before=before,
                          after=after, version=version, issue=issue["id"])  # fmt: skip


# --- transition rules -----------------------------------------------------------------------


def _rules(conn: sqlite3.Connection, project_id: str) -> list[TransitionRule]:
    return [TransitionRule(from_stage_id=r[0], to_stage_id=r[1], min_role=r[2])
            for r in stage_sql.list_rules(conn, project_id)]  # fmt: skip


def _dump(rules: list[TransitionRule]) -> list[dict[str, str]]:
    return [rule.model_dump() for rule in rules]


def _drop_rules_of(uow: UnitOfWork, project_id: str, stage_id: str) -> None:
    before = _rules(uow.conn, project_id)
    after = [r for r in before if stage_id not in (r.from_stage_id, r.to_stage_id)]
    if len(after) != len(before):
        stage_sql.delete_rules_of_stage(uow.conn, stage_id)
        uow.record(Entity.PROJECT, project_id, Op.UPDATE, project=project_id, field="transitions",
                   old=_dump(before), new=_dump(after))  # fmt: skip


async def get_transitions(core: Core, access: ProjectAccess) -> Transitions:
    project = access.project
    rules = await read(core, access, lambda conn: _rules(conn, project.id))
    return Transitions(rules=rules)


async def put_transitions(
    core: Core, access: ProjectAccess, data: TransitionsIn, actor: Actor
) -> Transitions:
    """Replace the project's rule set (empty: every move allowed), logged as one change."""
    project = access.project

    def work(uow: UnitOfWork) -> Transitions:
        stage_ids = {row["id"] for row in stage_sql.list_stages(uow.conn, project.id)}
        check_rules(((r.from_stage_id, r.to_stage_id) for r in data.rules), stage_ids)
        before = _rules(uow.conn, project.id)
        stage_sql.replace_rules(
            uow.conn, project.id, ((r.from_stage_id, r.to_stage_id, r.min_role) for r in data.rules)
        )
        after = _rules(uow.conn, project.id)
        if _dump(before) != _dump(after):
            uow.record(
                Entity.PROJECT, project.id, Op.UPDATE, project=project.id, field="transitions",
                old=_dump(before), new=_dump(after),
            )  # fmt: skip
        return Transitions(rules=after)

    return await mutate(core, access, actor, work)


# --- called by the issue service on the writer thread ----------------------------------------


def move_card(
    conn: sqlite3.Connection,
    project: ProjectRef,
    issue: sqlite3.Row,
    stage: sqlite3.Row,
    *,
    before: int | None,
    after: int | None,
    at: str,
) -> dict[str, Any]:
    """The issue columns to write for putting `issue` (a row of storage.issues.ISSUE_VIEW)
    into `stage` at a position: transition rules first (409/403), then stage_id, rank
    and resolved_at, each only when it changes. Empty when nothing moves."""
    assert project.role is not None
    check_move(conn, project.id, issue["stage_id"], stage["id"], project.role)
    columns: dict[str, Any] = {}
    if stage["id"] != issue["stage_id"]:
        columns["stage_id"] = stage["id"]
    rank = place_card(conn, project.id, issue, stage["id"], before=before, after=after)
    if rank != issue["rank"]:
        columns["rank"] = rank
    resolved = resolved_at_after(issue["status_category"], stage["category"],
                                 issue["resolved_at"], at)  # fmt: skip
    if resolved != issue["resolved_at"]:
        columns["resolved_at"] = resolved
    return columns


def check_move(
    conn: sqlite3.Connection, project_id: str, from_stage: str, to_stage: str, role: ProjectRole
) -> None:
    """Enforce the project's transition rules for one stage change (409 rule, 403 role)."""
    if from_stage != to_stage:
        check_transition(stage_sql.rules_map(conn, project_id), from_stage, to_stage, role)


def place_card(
    conn: sqlite3.Connection,
    project_id: str,
    issue: sqlite3.Row | dict[str, Any],
    stage_id: str,
    *,
    before: int | None = None,
    after: int | None = None,
) -> str:
    """The rank for `issue` in column `stage_id`: right before issue number `before`,
    right after `after`, or (neither) at the bottom unless it already is in that column.

    Only the moved card's rank changes: a key strictly between its new neighbours
    (fractional indexing), so a move touches one issue row, never the column.
    """
    if before is None and after is None:
        if issue["stage_id"] == stage_id:
            return str(issue["rank"])
        return generate_key_between(board_sql.last_rank(conn, project_id, stage_id), None)
    low, high = _anchor_bounds(conn, project_id, issue, stage_id, before, after)
    return generate_key_between(low, high)


def _anchor_bounds(
    conn: sqlite3.Connection,
    project_id: str,
    issue: sqlite3.Row | dict[str, Any],
    stage_id: str,
    before: int | None,
    after: int | None,
) -> tuple[str | None, str | None]:
    given = [(name, n) for name, n in (("before", before), ("after", after)) if n is not None]
    anchors = {name: _anchor(conn, project_id, issue, stage_id, name, n) for name, n in given}
    if len(anchors) == 2:
        low, high = anchors["after"], anchors["before"]
        if (
            not low < high
            or board_sql.rank_neighbour(
                conn, project_id, stage_id, low, issue["row_id"], below=False
            )
            != high
        ):
            raise ValidationFailed([("before", "`after` and `before` must be adjacent cards")])
        return low, high
    if "before" in anchors:
        high = anchors["before"]
        return board_sql.rank_neighbour(conn, project_id, stage_id, high, issue["row_id"],
                                        below=True), high  # fmt: skip
    low = anchors["after"]
    return low, board_sql.rank_neighbour(conn, project_id, stage_id, low, issue["row_id"],
                                         below=False)  # fmt: skip


def _anchor(
    conn: sqlite3.Connection,
    project_id: str,
    issue: sqlite3.Row | dict[str, Any],
    stage_id: str,
    name: str,
    number: int,
) -> str:
    """The rank of the card the move is positioned against; it must be in the column."""
    row = issue_sql.issue_by_number(conn, project_id, number)
    if row is None or row["stage_id"] != stage_id or row["id"] == issue["id"]:
        raise ValidationFailed([(name, "must be another issue in the target column")])
    return str(row["rank"])
