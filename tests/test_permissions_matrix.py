"""The permission matrix: every route x every role, expected statuses derived from RULES.

Nothing here is listed case by case. For each route of `all_routes()` (whoever
added it) and each role, the expected outcome comes from the route's
Permission and the SPEC §3 grants below: 401 for the anonymous caller, 404
when the caller may not see the org or project, 403 when they see it but lack
the role. An allowed caller must get past authorization: no 401/403, no 404
that hides the org or project, and never a 500.

Requests carry `{}` as the body of body-taking routes, so an allowed caller
usually stops at validation (422) or sends an empty PATCH, and nothing
changes; when a request did change something (a 2xx POST/PUT/DELETE, e.g. the
org's DELETE), the world is rebuilt before the next request.

A 403 from the handler itself (e.g. "reporters may only edit issues they
reported") is a finer rule about one resource, not the route's permission:
the table's own refusals say "this needs the ... role", and only those count.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tracker.domain.ids import new_id
from tracker.domain.permissions import RULES, OrgRole, Permission, ProjectRole, Scope
from tracker.http.binding import Route
from tracker.http.routes import all_routes

#: SPEC §3 grants per role: (org role, role on an org-visible project, on a private one).
#: Org members are reporters on org-visible projects; org owners/admins are admins.
GRANTS: dict[str, tuple[str | None, str | None, str | None] | None] = {
    "anonymous": None,
    "non_member": (None, None, None),
    "org_member": ("member", "reporter", None),
    "viewer": ("member", "viewer", "viewer"),
    "reporter": ("member", "reporter", "reporter"),
    "developer": ("member", "developer", "developer"),
    "project_admin": ("member", "admin", "admin"),
    "org_admin": ("admin", "admin", "admin"),
    "owner": ("owner", "admin", "admin"),
}
HIDDEN = {"organization not found", "project not found"}
TABLE_REFUSAL = "this needs the "  # how decide() words a 403
_slugs = itertools.count(1)


def expected(permission: Permission, role: str, private: bool) -> tuple[int, str] | None:
    """The refusal (status, 404 detail) SPEC §3 implies, or None when the role may do it."""
    rule = RULES[permission]
    if rule.scope is Scope.PUBLIC:
        return None
    grants = GRANTS[role]
    if grants is None:
        return 401, ""
    if rule.scope is Scope.USER:
        return None
    org_role, open_role, private_role = grants
    if org_role is None:
        return 404, "organization not found"
    if rule.scope is Scope.ORG:
        assert rule.org_role is not None
        return (403, "") if OrgRole(org_role).rank < rule.org_role.rank else None
    project_role = private_role if private else open_role
    if project_role is None:
        return 404, "project not found"
    assert rule.project_role is not None
    return (403, "") if ProjectRole(project_role).rank < rule.project_role.rank else None


@dataclass
class World:
    """One org with an org-visible project WEB, a private SEC, and one user per role."""

    client: TestClient
    users: dict[str, dict[str, Any]]
    slug: str = ""
    dirty: bool = True
    issue_route: bool = field(default=False)

    async def build(self) -> None:
        owner = self.users["owner"]
        self.slug = f"matrix-{next(_slugs)}"
        await self._ok("POST", "/orgs", owner, {"name": "Matrix", "slug": self.slug})
        for key, visibility in (("WEB", "org"), ("SEC", "private")):
            body = {"name": key, "key": key, "visibility": visibility}
            await self._ok("POST", f"/orgs/{self.slug}/projects", owner, body)
        await asyncio.gather(*(self._grant(role) for role in GRANTS))
        if self.issue_route:  # issue 1 in each project, when the issue routes exist
            for key in ("WEB", "SEC"):
                await self.client.post(f"/api/v1/orgs/{self.slug}/projects/{key}/issues",
                                       json={"title": "one"}, headers=owner["headers"])  # fmt: skip
        self.dirty = False

    async def _grant(self, role: str) -> None:
        """Make `role`'s user an org member and, for project roles, a member of both."""
        grants = GRANTS[role]
        if grants is None or grants[0] in (None, "owner"):
            return
        owner, user = self.users["owner"], self.users[role]
        await self._ok("POST", f"/orgs/{self.slug}/members", owner,
                       {"user_id": user["id"], "role": grants[0]})  # fmt: skip
        if grants[0] == "member" and role != "org_member":
            for key in ("WEB", "SEC"):
                await self._ok("POST", f"/orgs/{self.slug}/projects/{key}/members", owner,
                               {"user_id": user["id"], "role": grants[2]})  # fmt: skip

    async def _ok(self, method: str, path: str, user: dict, body: dict) -> None:
        response = await self.client.request(
            method, "/api/v1" + path, json=body, headers=user["headers"]
        )
        assert response.status == 201, (path, await response.text())

    def url(self, route: Route, project: str) -> str:
        values = {"org": self.slug, "project": project, "n": "1", "key": f"{project}-1"}
        return re.sub(r"{(\w+)}", lambda m: values.get(m.group(1)) or new_id(), route.full_path)


async def make_world(api: Api, client: TestClient) -> World:
    users = {role: await api.user() for role, grants in GRANTS.items() if grants is not None}
    users["anonymous"] = {"headers": {}}
    paths = {(r.method, r.path) for r in all_routes()}
    world = World(client, users, issue_route=("POST", "/orgs/{org}/projects/{project}/issues")
                  in paths)  # fmt: skip
    await world.build()
    return world


async def call(world: World, route: Route, role: str, project: str) -> tuple[int, str]:
    if world.dirty:
        await world.build()
    body = {} if route.body is not None else None
    response = await world.client.request(
        route.method, world.url(route, project), json=body, headers=world.users[role]["headers"]
    )
    text = await response.text()
    detail = ""
    if response.content_type == "application/problem+json":
        detail = (await response.json()).get("detail", "")
    if route.method not in ("GET", "PATCH") and 200 <= response.status < 300:
        world.dirty = True  # something changed (an archive, a leave...): rebuild first
    return response.status, detail or text[:200]


def verdict(route: Route, role: str, private: bool, status: int, detail: str) -> str | None:
    """A mismatch message, or None when the status is what the table implies."""
    want = expected(route.permission, role, private)
    where = f"{route.method} {route.path} [{'private' if private else 'org'}] as {role}"
    if want is None:
        hidden = status == 404 and detail in HIDDEN
        refused = status == 401 or (status == 403 and detail.startswith(TABLE_REFUSAL))
        if refused or hidden or status >= 500:
            return f"{where}: allowed by {route.permission} but got {status} {detail!r}"
        return None
    wrong_detail = (want[0] == 404 and detail != want[1]) or (
        want[0] == 403 and not detail.startswith(TABLE_REFUSAL)
    )
    if status != want[0] or wrong_detail:
        return f"{where}: want {want[0]} {want[1]!r} ({route.permission}), got {status} {detail!r}"
    return None


def test_every_route_names_a_permission_and_every_permission_has_a_rule() -> None:
    assert set(RULES) == set(Permission)
    for route in all_routes():
        assert isinstance(route.permission, Permission), f"{route.method} {route.path}"
        if RULES[route.permission].scope is Scope.PROJECT:
            assert "{project}" in route.path, f"{route.path}: project permission, no project"


async def test_every_route_for_every_role(api: Api, client: TestClient) -> None:
    world = await make_world(api, client)
    problems, checked = [], 0
    for route in all_routes():
        projects = ("WEB", "SEC") if "{project}" in route.path else ("WEB",)
        for project in projects:
            for role in GRANTS:
                status, detail = await call(world, route, role, project)
                checked += 1
                if (problem := verdict(route, role, project == "SEC", status, detail)) is not None:
                    problems.append(problem)
    assert checked >= len(all_routes()) * len(GRANTS)
    assert problems == [], "\n".join(problems)


def test_the_oracle_matches_spec_examples() -> None:
    """A few fixed points, so a wrong GRANTS table cannot make the matrix vacuous."""
    assert expected(Permission.PROJECT_READ, "org_member", private=True) == (
        404,
        "project not found",
    )
    assert expected(Permission.PROJECT_READ, "org_member", private=False) is None
    assert expected(Permission.ISSUE_CREATE, "viewer", private=False) == (403, "")
    assert expected(Permission.ISSUE_UPDATE, "developer", private=True) is None
    assert expected(Permission.ORG_DELETE, "org_admin", private=False) == (403, "")
    assert expected(Permission.ORG_READ, "non_member", private=False) == (
        404, "organization not found")  # fmt: skip
    assert expected(Permission.AUTHENTICATED, "anonymous", private=False) == (401, "")
    assert expected(Permission.PROJECT_MANAGE, "project_admin", private=True) is None
