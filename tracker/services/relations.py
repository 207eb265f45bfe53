"""Relations between issues: each link is two rows (one per side) sharing a pair_id.

Adding `A blocks B` also records `B is_blocked_by A`; deleting either side
deletes both; both sides get a change row on their own issue's history. A
target may live in another project of the same org when the caller can see
it; a project or issue the caller cannot see is 404, as everywhere.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor
from tracker.domain.ids import new_id
from tracker.domain.models.base import Page
from tracker.domain.models.comments import INVERSE, Relation, RelationIn, SubListQuery
from tracker.domain.permissions import ProjectRole, effective_project_role
from tracker.errors import Conflict, NotFound, ValidationFailed
from tracker.services.access import ProjectAccess, read, resolve_project
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.comments import is_project_admin, issue_in, page_of
from tracker.services.runtime import Core
from tracker.storage import relations as relation_sql

_IMAGE = ("id", "pair_id", "source_id", "target_id", "type", "created_by", "created_at")


async def create_relation(
    core: Core, access: ProjectAccess, number: int, data: RelationIn, actor: Actor
) -> Relation:
    """Link the URL's issue to `data.issue`, recording the inverse on the other side."""
    target = await target_of(core, access, data.issue)
    return await mutate(
        core, access, actor, lambda uow: relation_in(uow, access, number, target, data.type)
    )


def relation_in(
    uow: UnitOfWork, access: ProjectAccess, number: int, target_ref: tuple[str, str, int],
    kind: str, pair_id: str | None = None,
) -> Relation:  # fmt: skip
    """The link inside the caller's unit of work; `target_ref` from `_target` (visibility
    checked); `pair_id` made by an offline replica (sync)."""
    project = access.project
    target_project, target_key, target_number = target_ref
    source = issue_in(uow.conn, project.id, number)
    target = _target_issue(uow.conn, target_project, target_key, target_number)
    if source["id"] == target["id"]:
        raise ValidationFailed([("issue", "an issue cannot be related to itself")])
    pair_id = pair_id or new_id()
    forward = _side(pair_id, source["id"], target["id"], kind, uow)
    backward = _side(pair_id, target["id"], source["id"], INVERSE[kind], uow)
    for side, side_project in ((forward, project.id), (backward, target_project)):
        if not relation_sql.insert_relation(uow.conn, side):
            raise Conflict(f"{_key(target_key, target_number)} is already linked that way")
        relation_sql.touch_issue(uow.conn, side["source_id"], uow.at)
        uow.record(Entity.RELATION, side["id"], Op.CREATE, project=side_project, new=side,
                   issue=side["source_id"])  # fmt: skip
    return _relation(forward, target_key, target["number"], target["title"])


async def delete_relation(
    core: Core, access: ProjectAccess, number: int, relation_id: str, actor: Actor
) -> None:
    """Remove a link seen from the URL's issue; its mirror on the other issue goes too."""
    await mutate(core, access, actor,
                 lambda uow: delete_relation_in(uow, access, number, relation_id))  # fmt: skip


def delete_relation_in(
    uow: UnitOfWork, access: ProjectAccess, number: int, relation_id: str
) -> None:
    """The removal inside the caller's unit of work (sync push applies it so)."""
    source = issue_in(uow.conn, access.project.id, number)
    relation = relation_sql.relation_of_issue(uow.conn, source["id"], relation_id)
    if relation is None:
        raise NotFound("relation not found")
    sides = relation_sql.pair(uow.conn, relation["pair_id"])
    relation_sql.delete_pair(uow.conn, relation["pair_id"])
    for side in sides:
        relation_sql.touch_issue(uow.conn, side["source_id"], uow.at)
        old = {name: side[name] for name in _IMAGE}
        uow.record(Entity.RELATION, side["id"], Op.DELETE, project=side["project_id"], old=old,
                   issue=side["source_id"])  # fmt: skip


async def list_relations(
    core: Core, access: ProjectAccess, number: int, query: SubListQuery
) -> Page[Relation]:
    """The URL issue's links to live issues the caller can see, oldest first."""
    project, admin = access.project, is_project_admin(access)
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else None

    def fetch(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        issue = issue_in(conn, project.id, number, include_deleted=admin)
        return relation_sql.list_relations(
            conn, issue["id"], access.user_id, after, query.limit + 1
        )

    rows, next_cursor = page_of(await read(core, access, fetch), query.limit,
                                lambda r: [r["id"]])  # fmt: skip
    items = [
        _relation(row, row["project_key"], row["number"], row["title"])
        for row in rows
        if _visible(access, row)
    ]
    return Page[Relation](items=items, next_cursor=next_cursor)


async def target_of(core: Core, access: ProjectAccess, ref: int | str) -> tuple[str, str, int]:
    """(project id, project key, number) of the other issue; NotFound when unseen."""
    project = access.project
    if isinstance(ref, int):
        return project.id, project.key, ref
    key, _, number = ref.rpartition("-")
    if not key or key.upper() == project.key.upper():
        return project.id, project.key, int(number)
    other = await resolve_project(core, access.org, key, access.user_id)
    if other.role is None:
        raise NotFound("project not found")
    return other.id, other.key, int(number)


def _target_issue(conn: sqlite3.Connection, project_id: str, key: str, number: int) -> sqlite3.Row:
    try:
        return issue_in(conn, project_id, number)
    except NotFound:
        raise NotFound(f"issue {_key(key, number)} not found") from None


def _visible(access: ProjectAccess, row: dict[str, Any]) -> bool:
    """Links into projects the caller cannot see are left out rather than leaked."""
    if row["project_key"] == access.project.key:
        return True
    member_role = ProjectRole(row["member_role"]) if row["member_role"] else None
    return effective_project_role(access.org.role, member_role, row["visibility"]) is not None


def _side(pair_id: str, source: str, target: str, kind: str, uow: UnitOfWork) -> dict[str, Any]:
    return {
        "id": new_id(), "pair_id": pair_id, "source_id": source, "target_id": target,
        "type": kind, "created_by": uow.actor.user_id, "created_at": uow.at,
    }  # fmt: skip


def _key(project_key: str, number: int) -> str:
    return f"{project_key}-{number}"


def _relation(row: dict[str, Any], project_key: str, number: int, title: str) -> Relation:
    target = row.get("target_id") or row["issue_id"]
    return Relation(
        id=row["id"], pair_id=row["pair_id"], type=row["type"], issue=_key(project_key, number),
        issue_id=target, title=title, created_by=row["created_by"], created_at=row["created_at"],
    )  # fmt: skip
