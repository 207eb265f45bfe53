"""Projects: create with the default workflow; list what the caller sees; patch; soft delete.

A deleted project keeps its row, issues and key (keys are never reused, so an
old `WEB-42` link can never point at a different issue); it disappears from
every route until an org owner/admin restores it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import new_id, now_iso
from tracker.domain.models.base import Page
from tracker.domain.models.orgs import Project, ProjectIn, ProjectListQuery, ProjectPatch
from tracker.domain.permissions import OrgRole, ProjectRole, effective_project_role
from tracker.domain.versions import if_match_ok
from tracker.domain.workflow import DEFAULT_STAGES
from tracker.errors import Conflict, Forbidden, NotFound, PreconditionFailed, ValidationFailed
from tracker.services.access import PROJECT_KEY_RE, Access, OrgRef, ProjectRef, resolve_org
from tracker.services.changes import Actor, UnitOfWork, mutate
from tracker.services.orgs import operator_access
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


def org_of(access: Access) -> OrgRef:
    assert access.org is not None
    return access.org


def project_of(access: Access) -> ProjectRef:
    """The project a project-scoped route resolved (the wrapper guarantees it)."""
    assert access.project is not None
    return access.project


async def create_project(core: Core, access: Access, data: ProjectIn, actor: Actor) -> Project:
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
        uow.record("project", row["id"], "create", project=row["id"], new=row, version=1)
        for position, (name, category) in enumerate(DEFAULT_STAGES):
            stage = {
                "id": new_id(), "project_id": row["id"], "name": name,
                "category": category, "position": position, "created_at": now,
            }  # fmt: skip
            project_sql.insert_stage(uow.conn, stage)
            uow.record("stage", str(stage["id"]), "create", project=row["id"], new=stage)

    await mutate(core, org_of(access).id, actor, work)
    return to_project(row, "admin")


def _key_taken(conn: sqlite3.Connection, key: str) -> str:
    existing = project_sql.project_by_key(conn, key)
    if existing is not None and existing["deleted_at"] is not None:
        return f"the project key '{key}' belongs to a deleted project; restore it or pick another"
    return f"the project key '{key}' is taken in this organization"


async def list_projects(core: Core, access: Access, query: ProjectListQuery) -> Page[Project]:
    """The projects the caller can see, by key; deleted ones only for org owners/admins."""
    org = org_of(access)
    assert org.role is not None
    see_all = org.role in (OrgRole.OWNER, OrgRole.ADMIN)
    if query.deleted and not see_all:
        raise Forbidden("only org owners and admins list deleted projects")
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else ""
    async with core.tenants.lease(org.id) as db:
        rows = await db.read(lambda conn: project_sql.visible_projects(
            conn, access.user_id or "", see_all=see_all, deleted=query.deleted,
            after=after, limit=query.limit + 1))  # fmt: skip
    items = [_with_role(org, row) for row in rows[: query.limit]]
    more = len(rows) > query.limit
    return Page[Project](items=items, next_cursor=encode_cursor([items[-1].key]) if more else None)


def _with_role(org: OrgRef, row: sqlite3.Row) -> Project:
    member = ProjectRole(row["member_role"]) if row["member_role"] else None
    role = effective_project_role(org.role, member, row["visibility"])
    return to_project(row, str(role) if role else None)


async def get_project(access: Access) -> Project:
    project = project_of(access)
    return to_project(project.row, str(project.role) if project.role else None)


async def patch_project(
    core: Core, access: Access, patch: ProjectPatch, actor: Actor, if_match: str | None = None
) -> Project:
    """Change name/description/visibility; a stale `if_match` header makes it a 412."""
    project = project_of(access)
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
            "project",
            project.id,
            project=project.id,
            before=dict(before),
            after={k: after[k] for k in changes},
            version=after["version"],
        )
        return after

    row = await mutate(core, org_of(access).id, actor, work)
    return to_project(row, str(project.role) if project.role else None)


async def delete_project(core: Core, access: Access, actor: Actor) -> None:
    """Soft-delete: the project vanishes from every route until restored."""
    project = project_of(access)

    def work(uow: UnitOfWork) -> None:
        before = project_sql.project_by_id(uow.conn, project.id)
        if before is None or before["deleted_at"] is not None:
            raise NotFound("project not found")
        project_sql.set_deleted(uow.conn, project.id, uow.at, uow.at)
        uow.record("project", project.id, "delete", project=project.id, old=image(before),
                   version=before["version"] + 1)  # fmt: skip

    await mutate(core, org_of(access).id, actor, work)


async def restore_project(core: Core, access: Access, key: str, actor: Actor) -> Project:
    """Bring back a soft-deleted project (org owners/admins; resolved by key incl. deleted)."""
    org = org_of(access)

    def work(uow: UnitOfWork) -> sqlite3.Row:
        before = project_sql.project_by_key(uow.conn, key)
        if before is None:
            raise NotFound("project not found")
        if before["deleted_at"] is None:
            raise Conflict(f"the project '{before['key']}' is not deleted")
        project_sql.set_deleted(uow.conn, before["id"], None, uow.at)
        after = project_sql.project_by_id(uow.conn, before["id"])
        assert after is not None
        uow.record("project", after["id"], "restore", project=after["id"], new=image(after),
                   version=after["version"])  # fmt: skip
        return after

    if not PROJECT_KEY_RE.match(key):
        raise NotFound("project not found")
    row = await mutate(core, org.id, actor, work)
    return to_project(row, "admin")


# --- the operator door (CLI) -------------------------------------------------------


async def create_project_as(core: Core, slug: str, data: ProjectIn, email: str | None) -> Project:
    access, actor = await operator_access(core, slug, email)
    return await create_project(core, access, data, actor)


async def list_projects_as(core: Core, slug: str, email: str | None) -> list[Project]:
    """Every project of an org (operator view), or those the `--as` user can see."""
    access, _ = await operator_access(core, slug, email)
    if email is not None:
        access = await _as_member(core, access)
    items: list[Project] = []
    query = ProjectListQuery(limit=200)
    while True:
        page = await list_projects(core, access, query)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        query = ProjectListQuery(limit=200, cursor=page.next_cursor)


async def _as_member(core: Core, access: Access) -> Access:
    """The `--as` user's real org role (the operator's owner rights would show everything)."""
    org = org_of(access)
    real = await resolve_org(core, org.slug, access.user_id)
    if real.role is None:
        raise ValidationFailed([("as", "that user is not a member of this organization")])
    return Access(access.user_id, real)
