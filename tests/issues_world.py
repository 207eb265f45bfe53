"""A small world for the issue tests: an org, projects, one user per role, stored rows.

Members are added through the real member endpoints, so the tests see roles
exactly as production resolves them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tracker.http.keys import CORE


@dataclass
class World:
    api: Api
    client: TestClient
    org: dict[str, Any]
    project: dict[str, Any]
    owner: dict[str, Any]  # org owner: admin in every project
    developer: dict[str, Any]
    reporter: dict[str, Any]  # plain org member: reporter in org-visible projects
    viewer: dict[str, Any]
    outsider: dict[str, Any]  # not in the org

    def url(self, path: str = "", project: str = "WEB") -> str:
        return f"/api/v1/orgs/{self.org['slug']}/projects/{project}{path}"

    async def create(self, who: dict[str, Any] | None = None, **body: Any) -> dict[str, Any]:
        body.setdefault("title", "An issue")
        response = await self.client.post(
            self.url("/issues"), json=body, headers=(who or self.owner)["headers"]
        )
        assert response.status == 201, await response.text()
        return await response.json()  # type: ignore[no-any-return]

    async def call(
        self, method: str, path: str, who: dict[str, Any] | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        """One request; returns (status, decoded JSON body or None)."""
        headers = {**(who or self.owner)["headers"], **kwargs.pop("headers", {})}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        text = await response.text()
        return response.status, (json.loads(text) if text else None)

    async def rows(self, sql: str, *params: object) -> list[dict[str, Any]]:
        """Rows straight from the tenant database (what was really stored)."""
        core = self.client.app[CORE]
        async with core.tenants.lease(self.org["id"]) as db:
            result = await db.read(lambda conn: conn.execute(sql, params).fetchall())
        return [dict(row) for row in result]

    async def changes(self, entity: str | None = None) -> list[dict[str, Any]]:
        """Change rows (JSON decoded), oldest first; optionally of one entity."""
        sql = "SELECT * FROM changes" + (" WHERE entity = ?" if entity else "") + " ORDER BY seq"
        found = await self.rows(sql, *([entity] if entity else []))
        for row in found:
            for name in ("old", "new", "meta"):
                row[name] = json.loads(row[name]) if row[name] is not None else None
        return found

    async def count(self, table: str) -> int:
        return int((await self.rows(f"SELECT count(*) AS n FROM {table}"))[0]["n"])


async def join(
    world_or_api: Any, owner: dict[str, Any], org: dict[str, Any], user: dict[str, Any],
    project_key: str | None = None, role: str | None = None, org_role: str = "member",
) -> None:  # fmt: skip
    """Add `user` to the org (and to a project with an explicit role) via the API."""
    client = world_or_api.client
    base = f"/api/v1/orgs/{org['slug']}"
    response = await client.post(
        f"{base}/members", json={"user_id": user["id"], "role": org_role},
        headers=owner["headers"],
    )  # fmt: skip
    assert response.status in (201, 409), await response.text()
    if project_key and role:
        response = await client.post(
            f"{base}/projects/{project_key}/members", json={"user_id": user["id"], "role": role},
            headers=owner["headers"],
        )  # fmt: skip
        assert response.status == 201, await response.text()


async def make_world(api: Api, client: TestClient) -> World:
    owner = await api.user()
    org = await api.org(owner)
    project = await api.project(owner, org, key="WEB")
    developer, reporter, viewer, outsider = [await api.user() for _ in range(4)]
    await join(api, owner, org, developer, "WEB", "developer")
    await join(api, owner, org, reporter)
    await join(api, owner, org, viewer, "WEB", "viewer")
    return World(api, client, org, project, owner, developer, reporter, viewer, outsider)
