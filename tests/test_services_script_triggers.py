"""Triggers across restarts and under a clock: event runs resume exactly once, schedules
run once per tick (a missed tick once at start), never overlap, and stop when disabled."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import sqlite3
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tests.issues_world import World, make_world
from tests.test_http_scripts import runs_of, save, script_services, settle
from tracker.domain.ids import utcnow
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services import script_triggers
from tracker.services.script_triggers import ScriptSchedules
from tracker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", script_timeout_ms=300)


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


async def test_event_run_after_a_restart_happens_exactly_once(
    world: World, settings: Settings, aiohttp_client: Callable[..., Any]
) -> None:
    script = await save(
        world, 'on_event("issue.created", function(ctx) ctx.issue:add_comment("welcome") end)'
    )
    from tracker.services.counters import SCRIPT_RUNS  # what /metrics reports

    ok_before = SCRIPT_RUNS["ok"]
    # the server "dies" right after the create commits: its consumer never sees the batch
    await script_services(world)[0].stop()
    issue = await world.create(title="created before the crash")
    assert await runs_of(world, script) == []
    await world.client.close()
    for _ in range(2):  # restart twice: the second start finds nothing left to do
        client = await aiohttp_client(create_app(settings))
        restarted = dataclasses.replace(world, client=client)
        await settle(restarted)
        runs = await runs_of(restarted, script)
        assert len(runs) == 1 and runs[0]["status"] == "ok"
        rows = await restarted.rows("SELECT body FROM comments")
        assert [r["body"] for r in rows] == ["welcome"]
        assert runs[0]["trigger"]["seq"] >= 1
        created = [c for c in await restarted.changes("issue") if c["entity_id"] == issue["id"]]
        assert runs[0]["trigger"]["seq"] >= created[0]["seq"]
        await client.close()
    assert SCRIPT_RUNS["ok"] - ok_before == 1  # counted once, like the run itself


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


async def schedules(world: World, clock: Clock) -> ScriptSchedules:
    """The app's own scheduler is stopped; this one reads the injected clock."""
    await script_services(world)[1].stop()
    scheduler = ScriptSchedules(world.client.app[CORE], clock=clock)
    scheduler.orgs.add(world.org["id"])
    return scheduler


async def test_schedule_runs_once_per_minute_and_stops_when_disabled(world: World) -> None:
    issue = await world.create(title="nag me")
    source = (
        'on_schedule("* * * * *", function(ctx) '
        f'ctx.project:issue("{issue["key"]}"):add_comment("tick") end)'
    )
    script = await save(world, source)
    clock = Clock(utcnow().replace(second=30, microsecond=0))
    scheduler = await schedules(world, clock)
    assert await scheduler.run_due() == []  # the current minute's tick predates the script
    for minute in range(1, 4):
        clock.now += timedelta(minutes=1)
        assert len(await scheduler.run_due()) == 1
        await scheduler.idle()
        assert await scheduler.run_due() == []  # same tick: never twice
        assert len(await runs_of(world, script)) == minute
    runs = await runs_of(world, script)
    assert {r["trigger"]["kind"] for r in runs} == {"schedule"}
    assert all(r["trigger"]["at"].endswith(":00.000Z") for r in runs)
    status, _ = await world.call(
        "PATCH", world.url(f"/scripts/{script['id']}"), json={"enabled": False}
    )
    assert status == 200
    clock.now += timedelta(minutes=1)
    assert await scheduler.run_due() == []
    assert await world.count("comments") == 3


async def test_missed_ticks_run_once_and_slow_runs_never_overlap(world: World) -> None:
    script = await save(world, 'on_schedule("* * * * *", function() while true do end end)')
    clock = Clock(utcnow() + timedelta(minutes=30))  # the server was down for half an hour
    scheduler = await schedules(world, clock)
    started = await scheduler.run_due()
    assert len(started) == 1  # thirty missed ticks: one run
    clock.now += timedelta(minutes=1)
    assert await scheduler.run_due() == []  # the slow run is still going: no overlap
    await scheduler.idle()
    runs = await runs_of(world, script)
    assert [r["status"] for r in runs] == ["timeout"]
    assert len(await scheduler.run_due()) == 1  # the next tick, now that it is free
    await scheduler.idle()
    await scheduler.stop()


async def test_an_org_far_behind_logs_runs_as_skipped_and_drops_none(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(script_triggers, "OVERLOAD_BEHIND", 5)
    script = await save(world, 'on_event("issue.created", function(ctx) log("ran") end)')
    events = script_services(world)[0]
    await events.stop()  # a burst arrives while the consumer is away
    for n in range(40):
        await world.create(title=f"burst {n}")
    await events.start()
    await settle(world)
    _, body = await world.call("GET", world.url(f"/scripts/{script['id']}/runs?limit=200"))
    runs = body["items"]
    assert len(runs) == 40 and len({r["trigger"]["seq"] for r in runs}) == 40
    skipped = [r for r in runs if r["status"] == "skipped"]
    assert skipped and all(r["error"].startswith("overloaded") for r in skipped)
    assert {r["status"] for r in runs} == {"skipped", "ok"}  # caught up: the rest ran
    # a turn is RUNS_PER_TURN runs; the cursor still reached the head
    head = (await world.rows("SELECT max(seq) AS s FROM changes"))[0]["s"]
    cursor = (await world.rows("SELECT seq FROM consumer_cursors WHERE name = 'scripts'"))[0]
    assert cursor["seq"] == head


async def test_a_server_killed_right_after_the_create_commits_runs_the_script_once(
    tmp_path: Path, aiohttp_client: Callable[..., Any]
) -> None:
    data, out = tmp_path / "data", tmp_path / "ids.json"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.script_crash_child", str(data), str(out), cwd=ROOT
    )
    assert await asyncio.wait_for(child.wait(), 120) == -signal.SIGKILL
    ids = json.loads(out.read_text())
    tenant = data / ids["org"] / "tracker.db"
    assert on_disk(tenant, "SELECT count(*) FROM issues") == 1
    assert on_disk(tenant, "SELECT count(*) FROM script_runs") == 0
    for _ in range(2):  # the first start runs it; the second finds nothing to do
        client = await aiohttp_client(create_app(make_settings(data)))
        running = client.app[CORE].background.running
        events = next(s for s in running if isinstance(s, script_triggers.ScriptEvents))
        await asyncio.sleep(0.05)
        await events.idle()
        await client.close()
        assert on_disk(tenant, "SELECT count(*) FROM script_runs WHERE status = 'ok'") == 1
        assert on_disk(tenant, "SELECT count(*) FROM comments WHERE body = 'welcome'") == 1


def on_disk(path: Path, sql: str) -> Any:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchone()[0]


async def test_an_org_without_scripts_is_not_even_woken(world: World) -> None:
    events = script_services(world)[0]
    await world.create(title="no scripts here")
    await settle(world)
    assert world.org["id"] in events.quiet
    handled: list[str] = []
    original = events.handle

    async def counting(org_id: str, page: Any) -> None:
        handled.append(org_id)
        await original(org_id, page)

    events.consumer._handle = counting
    await world.create(title="still none")
    await settle(world)
    assert handled == []
    script = await save(world, 'on_event("issue.created", function(ctx) log("now") end)')
    assert world.org["id"] not in events.quiet
    await world.create(title="and now one")
    await settle(world)
    assert [r["logs"] for r in await runs_of(world, script)] == [["now"]]
