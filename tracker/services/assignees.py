"""Who may be assigned (or named in a `user` custom field), and issue assignee links.

A user can be assigned when they can see the project (SPEC §3): a live member
of the org, and for a private project an explicit project member or an org
admin/owner. Org membership lives in the system database, so this check is a
read there (plus one tenant read for private projects) made before the
issue's write unit starts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection
from typing import Any

from tracker.domain.changes import Entity, Op
from tracker.domain.custom_fields import user_values
from tracker.domain.models.issues import Assignee
from tracker.domain.permissions import OrgRole, ProjectRole, effective_project_role
from tracker.errors import NotFound, ValidationFailed
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import UnitOfWork
from tracker.services.custom_fields import field_defs
from tracker.services.runtime import Core
from tracker.storage import assignees as assignee_sql
from tracker.storage import issues as issue_sql


async def invisible_users(core: Core, access: ProjectAccess, user_ids: Collection[str]) -> set[str]:
    """Those of `user_ids` who cannot see the project (unknown ids included)."""
    if not user_ids:
        return set()
    project = access.project
    org_id, ids = access.org.id, sorted(user_ids)
    org_roles = await core.system.read(
        lambda conn: assignee_sql.org_member_roles(conn, org_id, ids)
    )
    member_roles: dict[str, str] = {}
    if project.visibility == "private" and org_roles:
        member_roles = await read(
            core,
            access,
            lambda conn: assignee_sql.project_member_roles(conn, project.id, list(org_roles)),
        )
    return _hidden(ids, org_roles, member_roles, project.visibility)


def _hidden(
    ids: list[str], org_roles: dict[str, str], member_roles: dict[str, str], visibility: str
) -> set[str]:
    return {
        user_id
        for user_id in ids
        if user_id not in org_roles
        or effective_project_role(
            OrgRole(org_roles[user_id]),
            ProjectRole(member_roles[user_id]) if user_id in member_roles else None,
            visibility,
        )
        is None
    }


async def users_must_see_project(
    core: Core, access: ProjectAccess, assignees: list[str] | None, custom: dict[str, Any] | None
) -> None:
    """422 naming every assignee / user-field value who cannot see the project."""
    project = access.project
    user_fields: dict[str, str] = {}
    if custom:
        defs = await read(core, access, lambda conn: field_defs(conn, project.id))
        named = user_values(defs, custom)
        user_fields = {v: n for n, v in custom.items() if isinstance(v, str) and v in named}
    wanted = set(assignees or ()) | set(user_fields)
    hidden = await invisible_users(core, access, wanted)
    _refuse_hidden(assignees, user_fields, hidden)


def _refuse_hidden(
    assignees: list[str] | None, user_fields: dict[str, str], hidden: set[str]
) -> None:
    errors = [("assignees", f"unknown user or cannot see this project: {u}")
              for u in (assignees or ()) if u in hidden]  # fmt: skip
    errors += [(f"custom_fields.{n}", "unknown user or cannot see this project")
               for u, n in user_fields.items() if u in hidden]  # fmt: skip
    if errors:
        raise ValidationFailed(errors)


OrgRolesOf = Callable[[list[str]], dict[str, str]]


def users_must_see_project_in(
    conn: sqlite3.Connection, access: ProjectAccess, assignees: list[str] | None,
    custom: dict[str, Any] | None, org_roles_of: OrgRolesOf,
) -> None:  # fmt: skip
    """`users_must_see_project` from inside a unit of work on the tenant's writer thread
    (script effects, previews): the tenant is read with `conn`, the org roles through
    `org_roles_of` (a read of the system database, which has its own thread)."""
    project = access.project
    user_fields: dict[str, str] = {}
    if custom:
        named = user_values(field_defs(conn, project.id), custom)
        user_fields = {v: n for n, v in custom.items() if isinstance(v, str) and v in named}
    ids = sorted(set(assignees or ()) | set(user_fields))
    if not ids:
        return
    org_roles = org_roles_of(ids)
    member_roles: dict[str, str] = {}
    if project.visibility == "private" and org_roles:
        member_roles = assignee_sql.project_member_roles(conn, project.id, list(org_roles))
    _refuse_hidden(
        assignees, user_fields, _hidden(ids, org_roles, member_roles, project.visibility)
    )


def sync_assignees(
    uow: UnitOfWork, project_id: str, issue_id: str, wanted: Collection[str], version: int
) -> None:
    """Make the issue's assignees exactly `wanted`, one change row per link added or removed."""
    current = set(assignee_sql.assignees_of(uow.conn, issue_id))
    for user_id in sorted(current - set(wanted)):
        assignee_sql.remove_assignee(uow.conn, issue_id, user_id)
        record_assignee_link(uow, project_id, issue_id, user_id, Op.DELETE, version)
    for user_id in sorted(set(wanted) - current):
        assignee_sql.add_assignee(uow.conn, issue_id, user_id)
        record_assignee_link(uow, project_id, issue_id, user_id, Op.CREATE, version)


def record_assignee_link(
    uow: UnitOfWork, project_id: str, issue_id: str, user_id: str, op: Op, version: int
) -> None:
    """One change row for an assignee link (entity id `issue_id:user_id`)."""
    link = {"issue_id": issue_id, "user_id": user_id}
    uow.record(
        Entity.ISSUE_ASSIGNEE, f"{issue_id}:{user_id}", op, project=project_id,
        old=link if op == Op.DELETE else None, new=link if op == Op.CREATE else None,
        version=version, issue=issue_id,
    )  # fmt: skip


async def list_assignees(core: Core, access: ProjectAccess, number: int) -> list[Assignee]:
    """The issue's assignees with their email and display name."""
    project = access.project

    def fetch(conn: sqlite3.Connection) -> list[str] | None:
        row = issue_sql.issue_by_number(conn, project.id, number)
        return None if row is None else assignee_sql.assignees_of(conn, row["id"])

    ids = await read(core, access, fetch)
    if ids is None:
        raise NotFound("issue not found")
    rows = await core.system.read(lambda conn: assignee_sql.users_brief(conn, ids))
    return [Assignee(id=r["id"], email=r["email"], display_name=r["display_name"]) for r in rows]
