"""The clone's bulk load (docs/offline.md, "Figures"): indexes dropped for the load and built
again after, the temporary file loaded without WAL; the replica must end up exactly as a
migrated tenant database, holding the server's data."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.offline_world import World, converged
from tracker.replica.engine import TENANT_DB
from tracker.storage.migrate import apply_migrations


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    return found


def schema(path: Path) -> set[tuple[str, str, str, str | None]]:
    with closing(sqlite3.connect(path)) as conn:
        return set(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


def journal_mode(path: Path) -> str:
    with closing(sqlite3.connect(path)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


async def test_cloned_base_and_view_have_the_migrated_schema(world: World, tmp_path: Path) -> None:
    ann = world.ann
    for n in range(3):
        await world.call("POST", "/orgs/acme/projects/WEB/issues", ann,
                         json={"title": f"issue {n}", "tags": ["ui"],
                               "assignees": [world.bob["id"]]})  # fmt: skip
    first = "/orgs/acme/projects/WEB/issues/1"
    await world.call("POST", f"{first}/comments", ann, json={"body": "first"})
    # a child whose parent has a higher number: the parent comes later in the snapshot
    await world.call("PATCH", first, ann, json={"parent": "WEB-3"})
    device = await world.device(ann)
    assert await device.clone("acme", "WEB") == 3

    fresh = tmp_path / "fresh.db"
    with closing(sqlite3.connect(fresh)) as conn:
        apply_migrations(conn, "tenant")
    expected = schema(fresh)
    assert any(kind == "index" and table == "issues" for kind, _, table, _ in expected)
    assert device.replica_dir is not None
    for side in ("base", "view"):
        (tenant,) = (device.replica_dir / side).glob(f"*/{TENANT_DB}")
        assert schema(tenant) == expected, side
        assert journal_mode(tenant) == "wal", side

    rows = device.view_rows(
        "SELECT i.number, p.number AS parent, i.comment_count, (SELECT count(*) FROM"
        " issue_tags t WHERE t.issue_id = i.id) AS tags, (SELECT count(*) FROM"
        " issue_assignees a WHERE a.issue_id = i.id) AS assignees FROM issues i"
        " LEFT JOIN issues p ON p.id = i.parent_id ORDER BY i.number"
    )
    assert [tuple(r) for r in rows] == [(1, 3, 1, 1, 1), (2, None, 0, 1, 1), (3, None, 0, 1, 1)]
    await converged(world, device)  # search index, statuses, counts as the server's
    shown = await device.cli("issue", "search", "first")
    assert shown.exit_code == 0 and "WEB-1" in shown.output, shown.output


async def test_rate_limited_requests_are_waited_out(aiohttp_server: Any) -> None:
    """A clone asks for pages faster than the default rate limit refills: a 429 is waited
    out (Retry-After), for the snapshot's NDJSON pages and for JSON calls alike."""
    from aiohttp import web

    from tracker.replica.client import Credentials, SyncClient

    hits: dict[str, int] = {}

    async def limited(request: web.Request) -> web.StreamResponse:
        name = request.path.rsplit("/", 1)[-1]
        hits[name] = hits.get(name, 0) + 1
        if hits[name] <= 2:
            return web.json_response({"status": 429}, status=429, headers={"Retry-After": "0"})
        if name == "snapshot":
            return web.Response(text='{"entity":"tag","id":"t1","data":{}}\n{"cursor":"e.1"}\n')
        return web.json_response({"epoch": "e", "server_time": "2026-01-01T00:00:00Z"})

    app = web.Application()
    app.router.add_get("/api/v1/orgs/acme/sync/{name}", limited)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    async with SyncClient(Credentials(url, "a@example.com", "u1", "r"), "acme") as client:
        client.access = "token"
        assert (await client.info())["epoch"] == "e"
        lines = [line async for line in client.snapshot("c1")]
    assert lines == [{"entity": "tag", "id": "t1", "data": {}}, {"cursor": "e.1"}]
    assert hits == {"info": 3, "snapshot": 3}
