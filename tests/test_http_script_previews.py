"""Preview and dry-run: the answer lists the patch's and the scripts' changes, and the
tenant file's content (data tables, change log, seq, run log) is exactly as before."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tests.test_http_scripts import save, settle
from tracker.http.keys import CORE
from tracker.settings import Settings

ESCALATE = """
on_event("issue.updated", function(ctx)
  if ctx.issue.priority == "critical" then
    ctx.issue:add_tag("urgent")
    ctx.issue:add_comment("Escalated by the bot.")
    log("escalated", ctx.issue.key)
  end
end)
"""
FOLLOW = """
on_event("comment.created", function(ctx)
  ctx.issue:update{description = "follow-up from " .. ctx.event.origin}
end)
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", script_timeout_ms=300)


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


async def fingerprint(world: World) -> str:
    """Every row of every table (FTS shadow tables and sqlite_sequence included)."""
    tables = [
        r["name"]
        for r in await world.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
        )
    ]
    digest = hashlib.sha256()
    for table in tables:
        rows = await world.rows(f'SELECT * FROM "{table}"')
        digest.update(table.encode())
        for row in sorted(repr(sorted(r.items())) for r in rows):
            digest.update(row.encode())
    return digest.hexdigest()


def listen(world: World) -> list[Any]:
    seen: list[Any] = []
    world.client.app[CORE].events.subscribe(seen.append)
    return seen


async def test_preview_lists_patch_and_script_changes_and_commits_nothing(world: World) -> None:
    await save(world, ESCALATE, name="escalate")
    await save(world, FOLLOW, name="follow")
    issue = await world.create(title="slow page")
    await settle(world)
    before, published = await fingerprint(world), listen(world)
    status, body = await world.call(
        "POST", world.url(f"/issues/{issue['number']}/preview"), json={"priority": "critical"}
    )
    assert status == 200, body
    assert body["would_fail"] is None
    by = {(c["by"], c["field"]) for c in body["changes"]}
    assert ("request", "priority") in by
    assert ("script:escalate", "tags") in by
    assert ("script:follow", "description") in by  # the cascade: escalate's comment -> follow
    # escalate runs at depth 1 (the request) and again at depth 3 (follow's update)
    assert (
        body["comments"]
        == [{"issue": issue["key"], "body": "Escalated by the bot.", "by": "script:escalate"}] * 2
    )
    runs = {r["script"]: r for r in body["runs"]}
    assert runs["escalate"]["status"] == "ok" and runs["escalate"]["logs"] == [
        f"escalated {issue['key']}"
    ]
    await settle(world)
    assert await fingerprint(world) == before
    assert published == []
    status, now = await world.call("GET", world.url(f"/issues/{issue['number']}"))
    assert now["priority"] == issue["priority"] and now["tags"] == []


async def test_preview_reports_a_refused_patch_as_would_fail(world: World) -> None:
    issue = await world.create(title="x")
    before = await fingerprint(world)
    url = world.url(f"/issues/{issue['number']}/preview")
    status, body = await world.call("POST", url, json={"status": "No such stage"})
    assert status == 200 and body["would_fail"]["status"] == 422
    assert body["changes"] == [] and body["runs"] == []
    status, body = await world.call("POST", url, world.viewer, json={"title": "mine now"})
    assert status == 403  # the route itself: viewers may not patch
    status, body = await world.call("POST", url, json={"priority": "urgentest"})
    assert status == 422  # malformed input is still a 4xx
    assert await fingerprint(world) == before


async def test_preview_consumes_no_issue_number(world: World) -> None:
    creator = (
        'on_event("issue.updated", function(ctx) ctx.project:create_issue{title = "spawned"} end)'
    )
    await save(world, creator)
    issue = await world.create(title="parent")
    await settle(world)
    before = await fingerprint(world)
    status, body = await world.call(
        "POST", world.url(f"/issues/{issue['number']}/preview"), json={"title": "renamed"}
    )
    assert status == 200
    created = [c for c in body["changes"] if c["field"] is None]
    assert created and created[0]["new"]["title"] == "spawned"
    assert await fingerprint(world) == before
    await settle(world)
    nxt = await world.create(title="next")  # (the real update above was never made)
    assert nxt["number"] == issue["number"] + 1


async def test_dry_run_of_a_manual_script_commits_nothing(world: World) -> None:
    issue = await world.create(title="dry")
    source = 'on_manual(function(ctx) ctx.issue:add_comment("would say hi") log("ran") end)'
    script = await save(world, source)
    before = await fingerprint(world)
    status, body = await world.call(
        "POST", world.url(f"/scripts/{script['id']}/dry-run"), json={"issue": issue["key"]}
    )
    assert status == 200, body
    assert body["comments"][0]["body"] == "would say hi"
    assert body["runs"] == [
        {"script": script["name"], "status": "ok", "logs": ["ran"], "error": None}
    ]
    assert await fingerprint(world) == before
    status, runs = await world.call("GET", world.url(f"/scripts/{script['id']}/runs"))
    assert runs["items"] == []
