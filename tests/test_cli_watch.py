"""`rhythm watch`: a real CLI process following a real server, reconnecting with since."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.issues_world import World, make_world
from tests.test_contract import ROOT
from tests.ws_world import head
from tracker.http.ws import hub_of


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


async def start_watch(world: World, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "RHYTHM_TOKEN": world.viewer["tokens"]["access_token"]}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "watch", *args,
        "--url", str(world.client.make_url("")).rstrip("/"),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    return (await asyncio.wait_for(process.stdout.readline(), 20)).decode()


async def test_watch_prints_json_lines_and_reconnects_with_since(world: World) -> None:
    since = await head(world)
    slug = world.org["slug"]
    process = await start_watch(world, f"{slug}/WEB", "--json", "--since", str(since),
                                "--count", "3")  # fmt: skip
    first = await world.create(title="one")
    events: list[dict[str, Any]] = [json.loads(await line(process))]
    assert events[0]["issue"]["id"] == first["id"] and "type" not in events[0]
    hub = hub_of(world.client.app)
    assert hub is not None
    for conn in list(hub._all):  # drop it server-side, as a slow reader would be
        conn.close(4008, "test: reconnect with since", flush=False)
    more = [await world.create(title="two"), await world.create(title="three")]
    events += [json.loads(await line(process)), json.loads(await line(process))]
    assert await asyncio.wait_for(process.wait(), 20) == 0
    assert [e["issue"]["id"] for e in events] == [first["id"]] + [m["id"] for m in more]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs))
    assert process.stderr is not None
    assert b"reconnecting since" in await process.stderr.read()


async def test_watch_prints_a_table_line_per_event(world: World) -> None:
    since = await head(world)
    process = await start_watch(world, world.org["slug"], "--since", str(since), "--count", "1")
    created = await world.create(title="Tabled")
    text = await line(process)
    assert await asyncio.wait_for(process.wait(), 20) == 0
    assert "issue.created" in text and f"WEB-{created['number']}" in text and "Tabled" in text


async def test_watch_fails_clearly_on_a_bad_token_or_unknown_project(world: World) -> None:
    env_less = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "watch", world.org["slug"], "--token", "nope",
        "--url", str(world.client.make_url("")).rstrip("/"), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(env_less.communicate(), 20)
    assert env_less.returncode == 1 and b"4401" in err
    process = await start_watch(world, f"{world.org['slug']}/NOPE")
    _, err = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 1 and b"not found" in err
