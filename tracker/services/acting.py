"""One way to act as someone outside an HTTP request: the CLI, scripts, sync.

    access, actor = await act_as(core, "acme", "WEB", "ann@example.com", "cli")
    issue = await issues.create_issue(core, access, data, actor)

`act_as` resolves a person (by email or user id) or the system identity
(`who=None`) into the SAME `OrgAccess`/`ProjectAccess` the HTTP door builds,
through the same `resolve_org`/`resolve_project`:

- with `permission`, a person gets their real roles and the permission table's
  `decide()` (404 hides, 403 refuses), exactly as over HTTP, so no door is laxer;
- without `permission` (the CLI on a data directory: whoever holds the files is
  the operator), or for the system identity, the access carries operator rights
  (org owner, project admin); a named person is still recorded as the actor.

Scripts (origin "script") are confined to one project: they must name it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import overload

from tracker.domain.changes import Actor, Origin
from tracker.domain.ids import is_uuid
from tracker.domain.permissions import OrgRole, Permission, ProjectRole, Scope, scope_of
from tracker.errors import NotFound, ValidationFailed
from tracker.services.access import (
    OrgAccess,
    ProjectAccess,
    authorize_org,
    authorize_project,
    resolve_org,
    resolve_project,
)
from tracker.services.runtime import Core
from tracker.storage import users as user_sql


async def person(core: Core, who: str) -> str:
    """The user id behind an email or a user id; NotFound names what was not found."""
    if "@" in who:
        row = await core.system.read(lambda conn: user_sql.user_by_email(conn, who))
        if row is None:
            raise NotFound(f"no user with the email {who}")
    else:
        known = is_uuid(who)
        row = await core.system.read(lambda conn: user_sql.user_by_id(conn, who)) if known else None
        if row is None:
            raise NotFound(f"no user with the id {who}")
    return str(row["id"])


async def actor_for(core: Core, who: str | None, origin: Origin) -> Actor:
    """The change-log actor: a person (email or id) or the system identity (None)."""
    return Actor(None if who is None else await person(core, who), origin)


@overload
async def act_as(
    core: Core,
    org_slug: str,
    project_key: None,
    who: str | None,
    origin: Origin,
    *,
    permission: Permission | None = None,
) -> tuple[OrgAccess, Actor]: ...
@overload
async def act_as(
    core: Core,
    org_slug: str,
    project_key: str,
    who: str | None,
    origin: Origin,
    *,
    permission: Permission | None = None,
) -> tuple[ProjectAccess, Actor]: ...
async def act_as(
    core: Core,
    org_slug: str,
    project_key: str | None,
    who: str | None,
    origin: Origin,
    *,
    permission: Permission | None = None,
) -> tuple[OrgAccess, Actor]:
    """Resolve `who` in an org (and project) into the access the HTTP door would build."""
    if origin == "script" and project_key is None:
        raise ValidationFailed([("project", "a script acts inside one project: name it")])
    actor = await actor_for(core, who, origin)
    user_id = actor.user_id
    if permission is not None and user_id is not None:
        if scope_of(permission) is Scope.PROJECT:
            if project_key is None:
                raise ValidationFailed([("project", f"'{permission}' needs a project")])
            return await authorize_project(core, permission, user_id, org_slug, project_key), actor
        if project_key is None:
            return await authorize_org(core, permission, user_id, org_slug), actor
        org_access = await authorize_org(core, permission, user_id, org_slug)
        project = await resolve_project(core, org_access.org, project_key, user_id)
        if project.role is None:
            raise NotFound("project not found")
        return ProjectAccess(user_id, org_access.org, project), actor
    # operator rights: the caller holds the data directory, or is the system itself
    org = replace(await resolve_org(core, org_slug, user_id), role=OrgRole.OWNER)
    if project_key is None:
        return OrgAccess(user_id, org), actor
    project = await resolve_project(core, org, project_key, user_id)
    return ProjectAccess(user_id, org, replace(project, role=ProjectRole.ADMIN)), actor


async def as_member(core: Core, access: OrgAccess) -> OrgAccess:
    """The same org seen with the person's real role (an operator view shows everything);
    ValidationFailed when they are not a member."""
    real = await resolve_org(core, access.org.slug, access.user_id)
    if real.role is None:
        raise ValidationFailed([("as", "that user is not a member of this organization")])
    return OrgAccess(access.user_id, real)
