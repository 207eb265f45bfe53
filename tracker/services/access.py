"""Resolve what a principal may touch: org by slug, project by key, effective roles.

Roles are read from the databases on every request, never trusted from token
claims, so removing a member takes effect on their very next request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tracker.domain.permissions import (
    OrgRole,
    Permission,
    ProjectRole,
    Scope,
    decide,
    effective_project_role,
    scope_of,
)
from tracker.domain.slugs import SLUG_RE
from tracker.errors import NotFound
from tracker.services.runtime import Core
from tracker.storage import orgs as org_sql
from tracker.storage import projects as project_sql

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
class Access:
    """What the door resolved for one request; services take it instead of raw slugs."""

    user_id: str | None
    org: OrgRef | None = None
    project: ProjectRef | None = None


async def resolve_org(core: Core, slug: str, user_id: str | None) -> OrgRef:
    """The org behind a URL slug; NotFound for bad grammar, unknown or archived slugs."""
    if not SLUG_RE.match(slug):
        raise NotFound("organization not found")
    cached = core.access_cache.get_org(slug, user_id)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
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
        return cached  # type: ignore[no-any-return]
    async with core.tenants.lease(org.id) as db:
        row = await db.read(lambda conn: project_sql.project_with_role(conn, key, user_id))
    if row is None:
        raise NotFound("project not found")
    member_role = ProjectRole(row["member_role"]) if row["member_role"] else None
    role = effective_project_role(org.role, member_role, row["visibility"])
    project = ProjectRef(row["id"], row["key"], row["name"], row["visibility"], role, dict(row))
    core.access_cache.put(org.id, cache_key, project)
    return project


async def authorize(
    core: Core,
    permission: Permission,
    user_id: str | None,
    org_slug: str | None = None,
    project_key: str | None = None,
) -> Access:
    """Resolve the route's org/project and enforce `permission` (404 hides, 403 refuses)."""
    scope = scope_of(permission)
    if scope in (Scope.PUBLIC, Scope.USER) or org_slug is None:
        return Access(user_id)
    org = await resolve_org(core, org_slug, user_id)
    if org.role is None:
        raise NotFound("organization not found")
    if scope is Scope.ORG or project_key is None:
        decide(permission, org_role=org.role)
        return Access(user_id, org)
    project = await resolve_project(core, org, project_key, user_id)
    decide(permission, org_role=org.role, project_role=project.role)
    return Access(user_id, org, project)
