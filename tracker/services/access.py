"""Resolve what a principal may touch: org by slug, project by key, effective roles.

Roles are read from the databases on every request, never trusted from token
claims, so removing a member takes effect on their very next request.

The access a door builds is typed by the route's scope: `UserAccess` (public and
any-user routes), `OrgAccess` (org never None) and `ProjectAccess` (an OrgAccess
with a project), so services state in their signatures what they need and never
assert it. `read` is the one way a service reads a tenant (writes: `mutate`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tracker.domain.permissions import (
    OrgRole,
    Permission,
    ProjectRole,
    decide,
    effective_project_role,
)
from tracker.domain.slugs import SLUG_RE
from tracker.errors import NotFound
from tracker.services.runtime import Core
from tracker.storage import orgs as org_sql
from tracker.storage import projects as project_sql

T = TypeVar("T")

PROJECT_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,9}$")


@dataclass(frozen=True)
class OrgRef:
    id: str
    slug: str
    name: str
    role: OrgRole | None
    created_at: str = ""


@dataclass(frozen=True)
class ProjectRef:
    id: str
    key: str
    name: str
    visibility: str
    role: ProjectRole | None
    row: dict[str, Any]


@dataclass(frozen=True)
class UserAccess:
    """A caller with no org resolved (public and any-user routes)."""

    user_id: str | None


@dataclass(frozen=True)
class OrgAccess(UserAccess):
    """A caller inside one org (their role is `org.role`); services take it, not slugs."""

    org: OrgRef


@dataclass(frozen=True)
class ProjectAccess(OrgAccess):
    """A caller inside one project of the org; usable wherever an OrgAccess is."""

    project: ProjectRef


async def read(
    core: Core,
    access: OrgAccess,
    fn: Callable[[sqlite3.Connection], T],
    *,
    time_limit_ms: int | None = None,
    small: bool = False,
) -> T:
    """Run the read-only unit `fn(conn)` on the access's tenant (its reader connection).

    User-driven queries pass a time limit: a runaway one becomes QueryTooExpensive,
    and expensive reads take turns between users (the caller is the turn's owner).
    `small` marks a read of a few indexed rows (one issue, the project list): it is
    answered on the event loop when the tenant's thread is idle (`Database.read_now`),
    or on a miss in the hop that opens the tenant (`TenantPool.read_small`).
    """
    if small and time_limit_ms is None:
        return await core.tenants.read_small(access.org.id, fn)
    return await read_org(core, access.org.id, fn, time_limit_ms=time_limit_ms,
                          owner=access.user_id)  # fmt: skip


async def read_org(
    core: Core,
    org_id: str,
    fn: Callable[[sqlite3.Connection], T],
    *,
    time_limit_ms: int | None = None,
    owner: str | None = None,
) -> T:
    """`read` for work that knows an org only by id and checks no person's access:
    the change feed (which filters by visibility itself) and background consumers."""
    async with core.tenants.lease(org_id) as db:
        return await db.read(fn, time_limit_ms, owner=owner)


async def resolve_org(core: Core, slug: str, user_id: str | None) -> OrgRef:
    """The org behind a URL slug; NotFound for bad grammar, unknown or archived slugs."""
    if not SLUG_RE.match(slug):
        raise NotFound("organization not found")
    cached = core.access_cache.get_org(slug, user_id)
    if cached is not None:
        return cached
    row, role = await core.system.read(lambda conn: org_sql.org_with_role(conn, slug, user_id))
    if row is None:
        raise NotFound("organization not found")
    org = OrgRef(
        row["id"], row["slug"], row["name"], OrgRole(role) if role else None, row["created_at"]
    )
    core.access_cache.put_org(slug, user_id, org.id, org)
    return org


async def resolve_project(core: Core, org: OrgRef, key: str, user_id: str | None) -> ProjectRef:
    """The project behind a URL key with the caller's effective role (None: invisible)."""
    if not PROJECT_KEY_RE.match(key):
        raise NotFound("project not found")
    cache_key = ("project", key.upper(), user_id)
    cached = core.access_cache.get(org.id, cache_key)
    if cached is not None:
        return cached
    async with core.tenants.lease(org.id) as db:
        row = await db.read(lambda conn: project_sql.project_with_role(conn, key, user_id))
    if row is None:
        raise NotFound("project not found")
    member_role = ProjectRole(row["member_role"]) if row["member_role"] else None
    role = effective_project_role(org.role, member_role, row["visibility"])
    project = ProjectRef(row["id"], row["key"], row["name"], row["visibility"], role, dict(row))
    core.access_cache.put(org.id, cache_key, project)
    return project


async def authorize_org(
    core: Core, permission: Permission, user_id: str | None, org_slug: str
) -> OrgAccess:
    """Resolve the org and enforce an org-scoped `permission` (404 hides, 403 refuses)."""
    org = await resolve_org(core, org_slug, user_id)
    if org.role is None:
        raise NotFound("organization not found")
    decide(permission, org_role=org.role)
    return OrgAccess(user_id, org)


async def authorize_project(
    core: Core, permission: Permission, user_id: str | None, org_slug: str, project_key: str
) -> ProjectAccess:
    """Resolve org and project and enforce a project-scoped `permission` (404/403).

    The resolved pair is one cached object (the ProjectAccess itself, immutable), so a
    repeated request pays one dict lookup and the decision; it is dropped with the
    org's other entries whenever its access facts change (AccessCache.on_batch)."""
    cache = core.access_cache
    access = cache.get_pair(org_slug, project_key, user_id)
    if access is None:
        epoch = cache.epoch
        org = await resolve_org(core, org_slug, user_id)
        if org.role is None:
            raise NotFound("organization not found")
        project = await resolve_project(core, org, project_key, user_id)
        access = ProjectAccess(user_id, org, project)
        cache.put_pair(org_slug, project_key, user_id, org.id, access, epoch)
    decide(permission, org_role=access.org.role, project_role=access.project.role)
    return access
