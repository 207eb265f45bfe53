"""Projects: create with the default workflow; list what the caller sees; patch; soft delete.

A deleted project keeps its row, issues and key (keys are never reused, so an
old `WEB-42` link can never point at a different issue); it disappears from
every route until an org owner/admin restores it.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import new_id, now_iso
from tracker.domain.models.base import Page
from tracker.domain.models.orgs import Project, ProjectIn, ProjectListQuery, ProjectPatch
from tracker.domain.permissions import OrgRole, ProjectRole, effective_project_role
from tracker.domain.versions import if_match_ok
from tracker.domain.workflow import DEFAULT_STAGES
from tracker.errors import Conflict, Forbidden, NotFound, PreconditionFailed
from tracker.services.access import (
    PROJECT_KEY_RE,
    OrgAccess,
    OrgRef,
    ProjectAccess,
    read,
)
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.storage import projects as project_sql

COLUMNS = ("id", "key", "name", "description", "visibility", "created_by", "created_at",
           "updated_at", "deleted_at", "version")  # fmt: skip


def to_project(row: Any, role: str | None = None) -> Project:
    return Project(
        id=row["id"], key=row["key"], name=row["name"], description=row["description"],
        visibility=row["visibility"], role=role, created_at=row["created_at"],
        updated_at=row["updated_at"], deleted_at=row["deleted_at"], version=row["version"],
    )  # fmt: skip


def image(row: Any) -> dict[str, Any]:
    """The project's post-image as the change log stores it."""
    return {name: row[name] for name in COLUMNS}


async def create_project(core: Core, access: OrgAccess, data: ProjectIn, actor: Actor) -> Project:
    """Create a project and its default stages in one change batch."""
    now = now_iso()
    row: dict[str, Any] = {
        "id": new_id(), "key": data.key.upper(), "name": data.name,
        "description": data.description, "visibility": data.visibility,
        "created_by": actor.user_id, "created_at": now, "updated_at": now,
        "deleted_at": None, "version": 1,
    }  # fmt: skip

    def work(uow: UnitOfWork) -> None:
        if not project_sql.insert_project(uow.conn, row):
            raise Conflict(_key_taken(uow.conn, row["key"]))
        uow.record(Entity.PROJECT, row["id"], Op.CREATE, project=row["id"], new=row, version=1)
        for position, (name, category) in enumerate(DEFAULT_STAGES):
            stage = {
                "id": new_id(), "project_id": row["id"], "name": name,
                "category": category, "position": position, "created_at": now,
            }  # fmt: skip
            project_sql.insert_stage(uow.conn, stage)
            uow.record(Entity.STAGE, str(stage["id"]), Op.CREATE, project=row["id"], new=stage)

    await mutate(core, access, actor, work)
    return to_project(row, "admin")


def _key_taken(conn: sqlite3.Connection, key: str) -> str:
    existing = project_sql.project_by_key(conn, key)
    if existing is not None and existing["deleted_at"] is not None:
        return f"the project key '{key}' belongs to a deleted project; restore it or pick another"
    return f"the project key '{key}' is taken in this organization"


async def list_projects(core: Core, access: OrgAccess, query: ProjectListQuery) -> Page[Project]:
    """The projects the caller can see, by key; deleted ones only for org owners/admins."""
    return Page[Project].model_validate_json(await list_projects_json(core, access, query))


async def list_projects_json(core: Core, access: OrgAccess, query: ProjectListQuery) -> bytes:
    """`list_projects` as JSON (the `Page[Project]` shape), encoded straight from the rows:
    models built only to be dumped cost more than the read itself (docs/read-path.md);
    a test holds the two shapes equal."""
    org = access.org
    assert org.role is not None
    see_all = org.role in (OrgRole.OWNER, OrgRole.ADMIN)
    if query.deleted and not see_all:
        raise Forbidden("only org owners and admins list deleted projects")
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else ""
    rows = await read(core, access, lambda conn: project_sql.visible_projects(
        conn, access.user_id or "", see_all=see_all, deleted=query.deleted,
        after=after, limit=query.limit + 1), small=True)  # fmt: skip
    if see_all:  # owners/admins: admin of every project, whatever their membership
        admin = str(ProjectRole.ADMIN)
        items = [_listed(row, admin) for row in rows[: query.limit]]
    else:
        items = [_listed(row, _role_of(org, row)) for row in rows[: query.limit]]
    cursor = encode_cursor([items[-1]["key"]]) if len(rows) > query.limit else None
    return _ENCODER.encode({"items": items, "next_cursor": cursor}).encode()


#: One encoder (json.dumps with options builds a new one per call); pydantic's own
#: output has no spaces and keeps non-ASCII text as is.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _role_of(org: OrgRef, row: sqlite3.Row) -> str | None:
    member = ProjectRole(row["member_role"]) if row["member_role"] else None
    role = effective_project_role(org.role, member, row["visibility"])
    return str(role) if role else None


def _listed(row: sqlite3.Row, role: str | None) -> dict[str, Any]:
    """A row in the `Project` shape, fields in the model's order."""
    return {
        "id": row["id"], "key": row["key"], "name": row["name"],
        "description": row["description"], "visibility": row["visibility"],
        "role": role, "created_at": row["created_at"],
        "updated_at": row["updated_at"], "deleted_at": row["deleted_at"],
        "version": row["version"],
    }  # fmt: skip


async def get_project(access: ProjectAccess) -> Project:
    project = access.project
    return to_project(project.row, str(project.role) if project.role else None)


async def patch_project(
    core: Core,
    access: ProjectAccess,
    patch: ProjectPatch,
    actor: Actor,
    if_match: str | None = None,
) -> Project:
    """Change name/description/visibility; a stale `if_match` header makes it a 412."""
    project = access.project
    changes = patch.model_dump(exclude_none=True)

    def work(uow: UnitOfWork) -> sqlite3.Row:
        before = project_sql.project_by_id(uow.conn, project.id)
        assert before is not None
        if not if_match_ok(if_match, before["version"]):
            raise PreconditionFailed(f"the project is at version {before['version']}")
        if all(before[name] == value for name, value in changes.items()):
            return before
        project_sql.update_project(uow.conn, project.id, {**changes, "updated_at": uow.at})
        after = project_sql.project_by_id(uow.conn, project.id)
        assert after is not None
        uow.record_fields(
            Entity.PROJECT,
            project.id,
            project=project.id,
            before=dict(before),
            after={k: after[k] for k in changes},
            version=after["version"],
        )
        return after

    row = await mutate(core, access, actor, work)
    return to_project(row, str(project.role) if project.role else None)


async def delete_project(core: Core, access: ProjectAccess, actor: Actor) -> None:
    """Soft-delete: the project vanishes from every route until restored."""
    project = access.project

    def work(uow: UnitOfWork) -> None:
        before = project_sql.project_by_id(uow.conn, project.id)
        if before is None or before["deleted_at"] is not None:
            raise NotFound("project not found")
        project_sql.set_deleted(uow.conn, project.id, uow.at, uow.at)
        uow.record(Entity.PROJECT, project.id, Op.DELETE, project=project.id, old=image(before),
                   version=before["version"] + 1)  # fmt: skip

    await mutate(core, access, actor, work)


async def restore_project(core: Core, access: OrgAccess, key: str, actor: Actor) -> Project:
    """Bring back a soft-deleted project (org owners/admins; resolved by key incl. deleted)."""

    def work(uow: UnitOfWork) -> sqlite3.Row:
        before = project_sql.project_by_key(uow.conn, key)
        if before is None:
            raise NotFound("project not found")
        if before["deleted_at"] is None:
            raise Conflict(f"the project '{before['key']}' is not deleted")
        project_sql.set_deleted(uow.conn, before["id"], None, uow.at)
        after = project_sql.project_by_id(uow.conn, before["id"])
        assert after is not None
        uow.record(Entity.PROJECT, after["id"], Op.RESTORE, project=after["id"], new=image(after),
                   version=after["version"])  # fmt: skip
        return after

    if not PROJECT_KEY_RE.match(key):
        raise NotFound("project not found")
    row = await mutate(core, access, actor, work)
    return to_project(row, "admin")
