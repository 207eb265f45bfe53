"""Tags: the project catalogue, and the set of tags on an issue.

Tag names are unique per project, case-insensitively. Setting an issue's tags
by name creates unknown names in the catalogue when the caller may create tags
(developer and up); for anyone else an unknown name is a 422.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import new_id
from tracker.domain.models.base import Page
from tracker.domain.models.issues import PageQuery, Tag, TagIn
from tracker.domain.permissions import Permission, holds
from tracker.errors import Conflict, NotFound, ValidationFailed
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.storage import issues as issue_sql
from tracker.storage import tags as tag_sql


def to_tag(row: sqlite3.Row | dict[str, object]) -> Tag:
    return Tag(id=row["id"], name=row["name"], color=row["color"], created_at=row["created_at"])


def may_create_tags(access: ProjectAccess) -> bool:
    return holds(Permission.TAG_CREATE, access.org.role, access.project.role)


async def list_tags(core: Core, access: ProjectAccess, query: PageQuery) -> Page[Tag]:
    """The catalogue in name order, paginated."""
    project = access.project
    after = decode_cursor(query.cursor, (str, str)) if query.cursor else None
    rows = await read(
        core, access, lambda conn: tag_sql.list_tags(conn, project.id, after, query.limit + 1)
    )
    items = [to_tag(r) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    cursor = encode_cursor([items[-1].name.lower(), items[-1].id]) if more else None
    return Page[Tag](items=items, next_cursor=cursor)


def _insert_tag(
    uow: UnitOfWork, project_id: str, name: str, color: str | None, tag_id: str | None = None
) -> sqlite3.Row:
    row: dict[str, Any] = {"id": tag_id or new_id(), "project_id": project_id, "name": name,
                           "color": color, "created_at": uow.at}  # fmt: skip
    if not tag_sql.insert_tag(uow.conn, row):
        raise Conflict(f"a tag named '{name}' exists in this project")
    uow.record(Entity.TAG, row["id"], Op.CREATE, project=project_id, new=row)
    tag = tag_sql.tag_by_id(uow.conn, project_id, row["id"])
    assert tag is not None  # inserted just above, in this transaction
    return tag


async def create_tag(core: Core, access: ProjectAccess, data: TagIn, actor: Actor) -> Tag:
    """Add a tag to the catalogue; 409 when the name exists."""
    return to_tag(await mutate(core, access, actor, lambda uow: create_tag_in(uow, access, data)))


def create_tag_in(
    uow: UnitOfWork, access: ProjectAccess, data: TagIn, tag_id: str | None = None
) -> sqlite3.Row:
    """The create inside the caller's unit of work; `tag_id` made by an offline replica."""
    return _insert_tag(uow, access.project.id, data.name, data.color, tag_id)


async def delete_tag(core: Core, access: ProjectAccess, tag_id: str, actor: Actor) -> None:
    """Remove a tag from the catalogue and from every issue (each issue's history shows it)."""
    project = access.project

    def work(uow: UnitOfWork) -> None:
        tag = tag_sql.tag_by_id(uow.conn, project.id, tag_id)
        if tag is None:
            raise NotFound("tag not found")
        for issue_id in tag_sql.issues_tagged(uow.conn, tag_id):
            version = issue_sql.touch_issue(uow.conn, issue_id, uow.at)
            record_tag_link(uow, project.id, issue_id, tag, Op.DELETE, version)
        tag_sql.delete_tag(uow.conn, tag_id)
        uow.record(Entity.TAG, tag_id, Op.DELETE, project=project.id, old=dict(tag))

    await mutate(core, access, actor, work)


def resolve_tags(
    uow: UnitOfWork, project_id: str, names: Sequence[str], may_create: bool
) -> list[sqlite3.Row]:
    """Catalogue rows for `names`, creating unknown ones when allowed (else 422)."""
    known = tag_sql.tags_named(uow.conn, project_id, names)
    unknown = [name for name in names if name.lower() not in known]
    if unknown and not may_create:
        raise ValidationFailed(
            [("tags", f"unknown tag '{name}' (only developers create tags)") for name in unknown]
        )
    for name in unknown:
        known[name.lower()] = _insert_tag(uow, project_id, name, None)
    return [known[name.lower()] for name in names]


def sync_issue_tags(
    uow: UnitOfWork, project_id: str, issue_id: str, wanted: Sequence[sqlite3.Row], version: int
) -> bool:
    """Make the issue's tags exactly `wanted`, one change row per link; True if any changed."""
    current = {r["id"]: r for r in tag_sql.tags_of_issue(uow.conn, issue_id)}
    target = {r["id"]: r for r in wanted}
    for tag_id in current.keys() - target.keys():
        tag_sql.unlink_tag(uow.conn, issue_id, tag_id)
        record_tag_link(uow, project_id, issue_id, current[tag_id], Op.DELETE, version)
    for tag_id in target.keys() - current.keys():
        tag_sql.link_tag(uow.conn, issue_id, tag_id)
        record_tag_link(uow, project_id, issue_id, target[tag_id], Op.CREATE, version)
    return current.keys() != target.keys()


def record_tag_link(
    uow: UnitOfWork, project_id: str, issue_id: str, tag: sqlite3.Row, op: Op, version: int
) -> None:
    """One change row for an issue-tag link (entity id `issue_id:tag_id`)."""
    link = {"issue_id": issue_id, "tag_id": tag["id"], "name": tag["name"]}
    uow.record(
        Entity.ISSUE_TAG, f"{issue_id}:{tag['id']}", op, project=project_id,
        old=link if op == Op.DELETE else None, new=link if op == Op.CREATE else None,
        version=version, issue=issue_id,
    )  # fmt: skip
