"""POST …/issues/import: JSON Lines into a running server, for project admins only."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tracker.http.app import create_app


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


def lines(*records: Any) -> bytes:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records).encode()


async def post_import(world: World, body: bytes, who: dict[str, Any] | None = None,
                      query: str = "") -> tuple[int, Any]:  # fmt: skip
    return await world.call(
        "POST", world.url("/issues/import" + query), who, data=body,
        headers={"Content-Type": "application/x-ndjson"},
    )  # fmt: skip


async def test_an_admin_imports_issues_with_comments(world: World) -> None:
    await world.create(title="made by hand")
    body = lines(
        {"title": "Imported bug", "type": "bug", "status": "In Progress",
         "reporter": world.developer["email"], "created_at": "2024-05-01T08:00:00Z",
         "comments": [{"body": "confirmed", "author": world.owner["email"]}]},
        {"title": "Imported task"},
    )  # fmt: skip
    status, report = await post_import(world, body)
    assert status == 200, report
    assert (report["issues"], report["comments"]) == (2, 1)
    status, shown = await world.call("GET", world.url("/issues/2"))
    assert status == 200
    assert (shown["title"], shown["status"], shown["reporter"]) == (
        "Imported bug", "In Progress", world.developer["id"]
    )  # fmt: skip
    assert shown["created_at"] == "2024-05-01T08:00:00.000Z"
    status, comments = await world.call("GET", world.url("/issues/2/comments"))
    assert [c["body"] for c in comments["items"]] == ["confirmed"]
    logged = await world.changes("issue")
    assert [c["origin"] for c in logged[-2:]] == ["api", "api"]
    status, found = await world.call("GET", world.url("/issues?q=imported"))
    assert sorted(i["key"] for i in found["items"]) == ["WEB-2", "WEB-3"]


async def test_a_bad_file_is_a_422_naming_lines_and_imports_nothing(world: World) -> None:
    status, problem = await post_import(
        world, lines({"title": "ok"}, "{not json", {"title": "x", "status": "Nowhere"})
    )
    assert status == 422
    fields = [e["field"] for e in problem["errors"]]
    assert fields[0].startswith("line 2") and fields[1] == "line 3: status"
    assert await world.count("issues") == 0


async def test_unknown_people_need_the_flag(world: World) -> None:
    body = lines({"title": "a", "reporter": "ghost@example.com"})
    status, problem = await post_import(world, body)
    assert status == 422 and "ghost@example.com" in json.dumps(problem)
    status, report = await post_import(world, body, query="?unknown_users_as_me=true")
    assert status == 200 and report["issues"] == 1
    rows = await world.rows("SELECT reporter FROM issues")
    assert rows == [{"reporter": world.owner["id"]}]


async def test_only_project_admins_may_import(world: World) -> None:
    body = lines({"title": "a"})
    for who, expected in ((world.developer, 403), (world.viewer, 403), (world.outsider, 404)):
        status, _ = await post_import(world, body, who)
        assert status == expected
    assert await world.count("issues") == 0


async def test_an_empty_body_imports_nothing(world: World) -> None:
    status, report = await post_import(world, b"")
    assert status == 200 and report["issues"] == 0


async def test_an_oversized_file_is_413_and_leaves_no_spool(
    aiohttp_client: Any, tmp_path: Any
) -> None:
    settings = make_settings(tmp_path / "small", max_import_bytes=2048)
    client = await aiohttp_client(create_app(settings))
    world = await make_world(Api(client), client)
    status, problem = await post_import(world, lines(*[{"title": "x" * 100}] * 40))
    assert status == 413, problem
    assert await world.count("issues") == 0
    assert not list(settings.data_dir.glob(".import-*"))
    status, report = await post_import(world, lines({"title": "fits"}))
    assert status == 200 and report["issues"] == 1
