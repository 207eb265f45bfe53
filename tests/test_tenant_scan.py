"""Start-up with many tenants: the server answers before the services' one pass over every
tenant ends; the pass opens each tenant once, never evicts hot tenants, and a restart
with work pending in only some orgs resumes exactly that work, once."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import stat
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api, make_settings
from tests.issues_world import make_world
from tests.notify_world import Inbox, Rhythm, body_text, notify_settings, smtp_server, start_rhythm
from tests.test_http_scripts import runs_of, save, script_services, settle
from tests.test_notifications import ORGS, Team, make_team, queue_size
from tracker.domain.ids import new_id
from tracker.http.app import create_app
from tracker.http.keys import CORE
from tracker.services.scan_memo import MEMO_FILE, RACY_SECONDS, ScanMemo, file_key, reader_id
from tracker.settings import Settings
from tracker.storage import scripts as script_sql
from tracker.storage.pool import TenantPool

WELCOME = 'on_event("issue.created", function(ctx) ctx.issue:add_comment("welcome") end)'


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


async def test_cold_leases_leave_the_hot_tenants_open(tmp_path: Path) -> None:
    pool = TenantPool(tmp_path, max_open=3)
    try:
        orgs = [new_id() for _ in range(8)]
        for org_id in orgs:
            await pool.create(org_id)
        hot, scanned = orgs[:3], orgs[3:]
        for org_id in hot:  # opened by requests, hottest last
            async with pool.lease(org_id):
                pass
        for org_id in [*hot, *scanned]:  # a pass over every tenant
            async with pool.lease_cold(org_id) as db:
                assert await db.read(lambda c: c.execute("SELECT 1").fetchone()[0]) == 1
        await asyncio.sleep(0.05)  # background closes
        # only the first tenant the pass opened cost a hot one (the coldest); the pass then
        # recycled its own slot
        assert set(pool._open) == {hot[1], hot[2], scanned[-1]}
        assert next(iter(pool._open)) == scanned[-1]  # at the cold end: the next victim
        async with pool.lease(orgs[0]):  # a request for an evicted tenant
            pass
        assert set(pool._open) == {hot[1], hot[2], orgs[0]}
    finally:
        await pool.close_all()


async def scan_gauges(client: TestClient) -> tuple[int, int]:
    """(running, orgs left) as /metrics reports them."""
    text = await (await client.get("/metrics")).text()
    found = dict(line.split(" ") for line in text.splitlines() if line.startswith("rhythm_startup"))
    return (
        int(float(found["rhythm_startup_scan_running"])),
        int(float(found["rhythm_startup_scan_orgs_left"])),
    )


async def test_the_server_answers_while_the_scan_runs(
    settings: Settings, aiohttp_client: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await aiohttp_client(create_app(settings))
    api = Api(first)
    owner = await api.user()
    orgs = [await api.org(owner) for _ in range(3)]
    await first.close()

    release = threading.Event()
    reads: list[str] = []
    real = script_sql.any_enabled

    def slow_any_enabled(conn: sqlite3.Connection) -> bool:
        reads.append(conn.execute("PRAGMA database_list").fetchone()[2])
        release.wait(10)  # the pass is stuck on its first tenant until the test lets go
        return real(conn)

    monkeypatch.setattr(script_sql, "any_enabled", slow_any_enabled)
    client: TestClient = await aiohttp_client(create_app(settings))
    core = client.app[CORE]
    try:
        response = await client.get("/api/v1/health/ready")
        assert response.status == 200, await response.text()
        response = await client.get(f"/api/v1/orgs/{orgs[0]['slug']}", headers=owner["headers"])
        assert response.status == 200
        assert core.scan.running and core.scan.orgs_left > 0
        assert await scan_gauges(client) == (1, 3)  # stuck on its first tenant of three
    finally:
        release.set()
    await core.scan.idle()
    assert core.scan.orgs_left == 0 and core.scan.passes == 1
    assert await scan_gauges(client) == (0, 0)
    # one read per tenant serves both script services (one function, run once)
    assert sorted(Path(p).parent.name for p in reads) == sorted(o["id"] for o in orgs)
    await client.close()


async def test_a_restart_resumes_only_the_orgs_with_pending_work_once(
    settings: Settings, aiohttp_client: Callable[..., Any]
) -> None:
    client = await aiohttp_client(create_app(settings))
    api = Api(client)
    worlds = [await make_world(api, client) for _ in range(4)]
    pending, done, no_scripts, idle = worlds
    scripts = {w.org["id"]: await save(w, WELCOME) for w in (pending, done, idle)}
    await done.create(title="handled before the restart")
    await settle(done)
    assert len(await runs_of(done, scripts[done.org["id"]])) == 1
    await script_services(pending)[0].stop()  # "dies": these creates are never consumed
    await pending.create(title="left behind")
    await no_scripts.create(title="nothing listens")
    await client.close()

    for _ in range(2):  # the second start finds nothing left anywhere
        client = await aiohttp_client(create_app(settings))
        again = [dataclasses.replace(w, client=client) for w in worlds]
        await settle(again[0])
        core = client.app[CORE]
        assert core.scan.passes == 1
        events = script_services(again[0])[0]
        assert events.quiet == {no_scripts.org["id"]}  # known to have no script
        for world in again:
            script = scripts.get(world.org["id"])
            comments = [r["body"] for r in await world.rows("SELECT body FROM comments")]
            if world.org == pending.org or world.org == done.org:
                assert comments == ["welcome"]  # once: the restart neither lost nor doubled it
            else:
                assert comments == []
            if script is not None:
                runs = await runs_of(world, script)
                assert len(runs) == (0 if world.org == idle.org else 1)
        await client.close()


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[int, Inbox]]:
    server, port, inbox = await smtp_server()
    yield port, inbox
    server.close()
    await server.wait_closed()


async def another_org(rhythm: Rhythm, team: Team) -> Team:
    """The same people in a second org (project WEB; Ann and Bob developers)."""
    org = await rhythm.api.org(team.olga)
    await rhythm.api.project(team.olga, org, key="WEB")
    base = f"{ORGS}/{org['slug']}"
    for name in ("ann", "bob"):
        user_id = team.people[name]["id"]
        await rhythm.call(
            "POST", f"{base}/members", team.olga, json={"user_id": user_id, "role": "member"}
        )
        await rhythm.call(
            "POST",
            f"{base}/projects/WEB/members",
            team.olga,
            json={"user_id": user_id, "role": "developer"},
        )
    return Team(rhythm, team.people, org)


async def test_notifications_left_in_two_of_four_orgs_are_each_sent_once_after_a_restart(
    tmp_path: Path, smtp: tuple[int, Inbox]
) -> None:
    """Org 1 stops with a window open (queued notices), org 2 with changes its consumer
    never read, orgs 3 and 4 with nothing left: one scan finds exactly orgs 1 and 2."""
    port, inbox = smtp
    settings = notify_settings(tmp_path / "data", port, window=2.0)
    first = await start_rhythm(settings)
    queued = await make_team(first)
    unread, *_ = [await another_org(first, queued) for _ in range(3)]
    issues = {}
    for team in (queued, unread):
        issues[team.org["id"]] = await team.call("POST", "/issues", team.ann, json={"title": "X"})
    await first.settled()
    assert inbox.messages == []  # Ann's own creations notify nobody
    n = issues[queued.org["id"]]["number"]
    await queued.call("PATCH", f"/issues/{n}", queued.bob, json={"priority": "major"})
    await first.queued()
    assert await queue_size(first, queued) == 1  # the window is open
    await first.service.consumer.stop()  # org 2's next change is never read
    n = issues[unread.org["id"]]["number"]
    await unread.call("PATCH", f"/issues/{n}", unread.bob, json={"priority": "minor"})
    await first.client.close()
    assert inbox.messages == []

    for restart in range(2):  # the second start finds nothing left anywhere
        second = await start_rhythm(settings)
        try:
            await second.queued()
            await second.settled()
            await asyncio.sleep(0.3)
            assert second.client.app[CORE].scan.passes == 1
        finally:
            await second.client.close()
        texts = sorted(body_text(m) for m in inbox.messages)
        assert len(texts) == 2 and all(m["To"] == "ann@example.com" for m in inbox.messages)
        assert "normal → major" in texts[0] + texts[1] and "normal → minor" in texts[0] + texts[1]
        assert all(t.count("bob changed priority") == 1 for t in texts), restart


# --- the memo: a restart opens only the tenants written since the last pass -----------------


async def comments_of(world: Any) -> list[str]:
    return [r["body"] for r in await world.rows("SELECT body FROM comments")]


async def test_a_restart_reads_only_the_tenants_written_since_the_last_pass(
    settings: Settings, aiohttp_client: Callable[..., Any]
) -> None:
    client = await aiohttp_client(create_app(settings))
    api = Api(client)
    worlds = [await make_world(api, client) for _ in range(4)]
    scripted, later, plain, other = worlds
    await save(scripted, WELCOME)
    await settle(scripted)  # its consumer is at the head: a restart has nothing to write
    await client.close()
    await asyncio.sleep(RACY_SECONDS + 0.1)  # the files' last writes are no longer "racy"

    async def start() -> tuple[TestClient, list[Any]]:
        client = await aiohttp_client(create_app(settings))
        again = [dataclasses.replace(w, client=client) for w in worlds]
        await settle(again[0])
        return client, again

    client, _ = await start()  # no memo yet: every tenant is read, and remembered
    scan = client.app[CORE].scan
    assert (scan.read, scan.remembered) == (4, 0)
    await client.close()
    assert (settings.data_dir / MEMO_FILE).is_file()

    client, again = await start()  # nothing was written: nothing is opened
    scan = client.app[CORE].scan
    assert (scan.read, scan.remembered) == (0, 4)
    events = script_services(again[0])[0]
    quiet = {w.org["id"] for w in (later, plain, other)}
    assert events.quiet == quiet  # from the memo: only `scripted` has a script
    await again[0].create(title="greeted")
    await settle(again[0])
    assert await comments_of(again[0]) == ["welcome"]  # the remembered answer was right
    await save(again[1], WELCOME)  # writes `later`'s file
    await settle(again[1])
    await client.close()
    await asyncio.sleep(RACY_SECONDS + 0.1)

    client, again = await start()  # the two written tenants are read again, and only they
    scan = client.app[CORE].scan
    assert (scan.read, scan.remembered) == (2, 2)
    assert script_services(again[0])[0].quiet == {plain.org["id"], other.org["id"]}
    await again[1].create(title="greeted too")  # a stale memo would call `later` quiet
    await settle(again[1])
    assert await comments_of(again[1]) == ["welcome"]
    await client.close()


def test_a_file_key_vouches_only_for_a_file_at_rest(tmp_path: Path) -> None:
    path = tmp_path / "tracker.db"
    path.write_bytes(b"x" * 4096)
    assert file_key(path) is None  # just written: a write in the same tick could hide
    later = time.time() + RACY_SECONDS + 0.01
    key = file_key(path, now=later)
    assert key is not None and key == file_key(path, now=later)
    wal = tmp_path / "tracker.db-wal"
    wal.write_bytes(b"")
    assert file_key(path, now=later) == key  # an empty WAL holds nothing
    wal.write_bytes(b"frames")
    assert file_key(path, now=later) is None  # part of the content is in the WAL
    wal.unlink()
    time.sleep(0.02)  # past the file clock's tick
    with path.open("r+b") as f:  # the same size, other bytes
        f.write(b"y")
    changed = file_key(path, now=time.time() + RACY_SECONDS + 0.01)
    assert changed is not None and changed != key
    assert file_key(tmp_path / "absent.db") is None


def test_a_reader_is_named_by_its_code() -> None:
    def any_enabled(conn: sqlite3.Connection) -> bool:
        return True

    first = reader_id(any_enabled)

    def any_enabled(conn: sqlite3.Connection) -> bool:
        return False

    assert first != reader_id(any_enabled)
    assert reader_id(script_sql.any_enabled) == reader_id(script_sql.any_enabled)


def test_an_unreadable_memo_is_an_empty_one(tmp_path: Path) -> None:
    path = tmp_path / MEMO_FILE
    key = (1, 2, 3, 4)
    memo = ScanMemo()
    memo.keep("org", key, {"r": (True, None)})
    memo.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = ScanMemo.load(path)
    assert loaded.recall("org", key, ["r"]) == {"r": (True, None)}  # tuples come back
    assert loaded.recall("org", key, ["r", "other"]) is None  # a reader it never asked
    assert loaded.recall("org", (1, 2, 3, 5), ["r"]) is None
    written = json.loads(path.read_text())
    written["code"] = "0.0.1/1"  # another release or schema: answers read again
    path.write_text(json.dumps(written))
    assert ScanMemo.load(path).entries == {}
    for garbage in (b"{not json", b'{"format": 99, "orgs": {}}', b'{"format": 1}', b"[]"):
        path.write_bytes(garbage)
        assert ScanMemo.load(path).entries == {}
