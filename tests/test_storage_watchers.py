"""Who watches an issue as of a change: a late-queued change never reaches later commenters."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.issues_world import World, make_world
from tracker.http.keys import CORE
from tracker.storage import watchers as watcher_sql


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


async def test_commenters_watch_from_their_comment_on(world: World) -> None:
    issue = await world.create(title="Broken build")
    created_at = issue["created_at"]
    status, _ = await world.call(
        "POST", world.url("/issues/1/comments"), world.developer, json={"body": "looking"}
    )
    assert status == 201
    core = world.client.app[CORE]
    async with core.tenants.lease(world.org["id"]) as db:
        then = await db.read(lambda c: watcher_sql.watchers(c, issue["id"], as_of=created_at))
        now = await db.read(lambda c: watcher_sql.watchers(c, issue["id"]))
    assert world.developer["id"] not in then  # the create came before the comment
    assert set(now) == {world.owner["id"], world.developer["id"]}
