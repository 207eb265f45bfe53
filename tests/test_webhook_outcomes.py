"""The org's shared outcome writer: one write for many hooks, and a failed write reported
to every hook whose outcomes it held (their rows stay pending: sent again)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.issues_world import World, make_world
from tracker.http.keys import CORE
from tracker.services.webhook_outcomes import OutcomeWriter


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


def outcome(delivery_id: str) -> Any:
    return (delivery_id, "2026-01-01T00:00:00.000Z", "delivered", None, "{}", 200, b"", None, 1)


async def test_a_failed_write_is_reported_to_each_hook_it_held(world: World) -> None:
    core = world.client.app[CORE]
    writer = OutcomeWriter(core, world.org["id"])
    writer.add("hook-a", outcome("no-such-delivery"))
    bad = (*outcome("x")[:6], {"not": "bytes"}, None, 1)  # the whole write fails
    writer.add("hook-b", bad)
    with pytest.raises(Exception, match="not supported"):
        await writer.flush("hook-a")
    with pytest.raises(Exception, match="not supported"):
        await writer.flush("hook-b")  # told once...
    await writer.flush("hook-b")  # ...then clean
    writer.add("hook-a", outcome("another"))
    writer.add("hook-c", outcome("third"))
    await writer.flush("hook-c")  # a good write: nobody hears of an error
    await writer.flush("hook-a")
