"""Helpers shared by the sync tests: a world of users and projects, and a replica-less
client that speaks the protocol of docs/sync.md over the real test server."""

from __future__ import annotations

import itertools
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tracker.domain.ids import new_id


class World:
    """An org `acme` with an owner, a developer `dev`, projects WEB (org-visible) and OPS
    (private, dev is a developer there)."""

    def __init__(self, client: TestClient, api: Api) -> None:
        self.client, self.api = client, api

    async def build(self) -> World:
        self.owner = await self.api.user()
        self.dev = await self.api.user()
        self.org = await self.api.org(self.owner, "acme")
        self.web = await self.api.project(self.owner, self.org, "WEB")
        self.ops = await self.api.project(self.owner, self.org, "OPS", visibility="private")
        await self.member(self.dev, "member")
        await self.project_role(self.dev, "WEB", "developer")
        await self.project_role(self.dev, "OPS", "developer")
        return self

    @property
    def base(self) -> str:
        return "/api/v1/orgs/acme"

    async def member(self, user: dict[str, Any], role: str) -> None:
        r = await self.client.post(
            f"{self.base}/members",
            json={"user_id": user["id"], "role": role},
            headers=self.owner["headers"],
        )
        assert r.status == 201, await r.text()

    async def project_role(self, user: dict[str, Any], key: str, role: str) -> None:
        url = f"{self.base}/projects/{key}/members"
        r = await self.client.post(
            url, json={"user_id": user["id"], "role": role}, headers=self.owner["headers"]
        )
        if r.status == 409:
            r = await self.client.patch(
                f"{url}/{user['id']}", json={"role": role}, headers=self.owner["headers"]
            )
        assert r.status in (200, 201), await r.text()

    async def remove_from_project(self, user: dict[str, Any], key: str) -> None:
        r = await self.client.delete(
            f"{self.base}/projects/{key}/members/{user['id']}", headers=self.owner["headers"]
        )
        assert r.status == 204, await r.text()

    async def issue(self, user: dict[str, Any], key: str = "WEB", **body: Any) -> dict[str, Any]:
        r = await self.client.post(
            f"{self.base}/projects/{key}/issues",
            json={"title": "An issue", **body},
            headers=user["headers"],
        )
        assert r.status == 201, await r.text()
        return await r.json()

    async def get_issue(self, user: dict[str, Any], key: str, number: int) -> dict[str, Any]:
        r = await self.client.get(
            f"{self.base}/projects/{key}/issues/{number}", headers=user["headers"]
        )
        assert r.status == 200, await r.text()
        return await r.json()

    async def patch_issue(self, user: dict[str, Any], key: str, number: int, **body: Any) -> None:
        r = await self.client.patch(
            f"{self.base}/projects/{key}/issues/{number}", json=body, headers=user["headers"]
        )
        assert r.status == 200, await r.text()

    async def stages(self, key: str = "WEB") -> dict[str, str]:
        r = await self.client.get(
            f"{self.base}/projects/{key}/stages", headers=self.owner["headers"]
        )
        assert r.status == 200, await r.text()
        body = await r.json()
        items = body["items"] if isinstance(body, dict) else body
        return {s["name"]: s["id"] for s in items}


class Replica:
    """The protocol's client side, bare: a client id and a mutation counter."""

    def __init__(self, world: World, user: dict[str, Any]) -> None:
        self.world, self.user = world, user
        self.counter = itertools.count(1)
        self.client_id = ""
        self.cursor = ""

    @property
    def headers(self) -> dict[str, str]:
        return {**self.user["headers"], "Rhythm-Sync": "protocol=1; schema=1"}

    async def register(self, scope: list[str] | None = None) -> dict[str, Any]:
        r = await self.world.client.post(
            f"{self.world.base}/sync/clients",
            json={"device": "laptop", "scope": scope or ["*"]},
            headers=self.headers,
        )
        assert r.status == 201, await r.text()
        body = await r.json()
        self.client_id = body["client_id"]
        self.cursor = f"{body['epoch']}.0"
        return body

    async def snapshot(self, project: str | None = None) -> tuple[list[dict[str, Any]], str]:
        """Every line of every page; returns (entity lines, final cursor)."""
        import json

        lines: list[dict[str, Any]] = []
        token = None
        while True:
            params = {"client_id": self.client_id, "limit": "7"}
            if token:
                params["page_token"] = token
            if project:
                params["project"] = project
            r = await self.world.client.get(
                f"{self.world.base}/sync/snapshot", params=params, headers=self.headers
            )
            assert r.status == 200, await r.text()
            page = [json.loads(line) for line in (await r.text()).splitlines()]
            assert "snapshot_seq" in page[0]
            lines.extend(page[1:-1])
            token = page[-1]["next_page_token"]
            if token is None:
                self.cursor = page[-1]["cursor"]
                return lines, self.cursor

    async def pull(self, limit: int = 1000, status: int = 200) -> dict[str, Any]:
        r = await self.world.client.get(
            f"{self.world.base}/sync/pull",
            headers=self.headers,
            params={"client_id": self.client_id, "cursor": self.cursor, "limit": str(limit)},
        )
        assert r.status == status, await r.text()
        body = await r.json()
        if status == 200 and body["reset"] is None:
            self.cursor = body["cursor"]
        return body

    async def pull_all(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self.pull()
            items.extend(page["items"])
            if not page["has_more"]:
                return items

    def mutation(self, name: str, args: dict[str, Any], v: int = 1) -> dict[str, Any]:
        return {
            "id": next(self.counter),
            "name": name,
            "v": v,
            "args": args,
            "at": "2026-01-01T00:00:00Z",
        }

    async def push(self, *mutations: dict[str, Any], status: int = 200) -> dict[str, Any]:
        r = await self.world.client.post(
            f"{self.world.base}/sync/push",
            headers=self.headers,
            json={
                "client_id": self.client_id,
                "protocol": 1,
                "schema": 1,
                "mutations": list(mutations),
            },
        )
        assert r.status == status, await r.text()
        return await r.json()

    def create(self, title: str, project_id: str, **extra: Any) -> dict[str, Any]:
        return self.mutation(
            "issue.create", {"id": new_id(), "project_id": project_id, "title": title, **extra}
        )
