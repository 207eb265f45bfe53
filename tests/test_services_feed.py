"""The change feed (`services.feed.since`) and durable consumer cursors.

A real server writes through the API; the feed is read from the same core.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.issues_world import World, join, make_world
from tracker.domain.changes import Actor
from tracker.http.keys import CORE
from tracker.services import feed
from tracker.services.changes import UnitOfWork, mutate_org
from tracker.storage.changes import row_to_change


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


async def _rows(world: World) -> list[Any]:
    async with core_of(world).tenants.lease(world.org["id"]) as db:
        return await db.read(lambda c: c.execute("SELECT * FROM changes ORDER BY seq").fetchall())


def core_of(world: World) -> Any:
    return world.client.app[CORE]


async def read_all(world: World, user: dict[str, Any] | None, seq: int = 0, **kw: Any) -> list:
    """Every batch after `seq` as `user` sees it, page by page (small pages on purpose)."""
    batches = []
    while True:
        page = await feed.since(
            core_of(world), world.org["id"], seq, user_id=user and user["id"], **kw
        )
        batches.extend(page.batches)
        assert page.next_seq >= seq
        seq = page.next_seq
        if page.at_head:
            return batches


async def test_batches_come_whole_in_seq_order_and_match_the_log(world: World) -> None:
    issue = await world.create(title="One")
    await world.call("PATCH", world.url(f"/issues/{issue['number']}"),
                     json={"title": "Two", "priority": "major", "type": "bug"})  # fmt: skip
    log = await world.changes()
    for limit in (1, 2, 3, 1000):  # pages smaller than a batch never split it
        batches = await read_all(world, None, limit=limit)
        seqs = [c.seq for b in batches for c in b.changes]
        assert seqs == [row["seq"] for row in log]
        for batch in batches:
            assert {c.batch for c in batch.changes} == {batch.batch}
            stored = [row["seq"] for row in log if row["batch"] == batch.batch]
            assert [c.seq for c in batch.changes] == stored  # whole, never cut
    stored = await world.rows("SELECT * FROM changes ORDER BY seq")
    assert [c.decoded() for b in batches for c in b.changes] == [
        row_to_change(r) for r in await _rows(world)
    ]  # decoded lazily, equal to the eager reading of every column
    assert len(stored) == len(log)
    patch = next(b for b in batches if any(c.field == "priority" for c in b.changes))
    assert {c.field for c in patch.changes} >= {"title", "priority", "type"}


async def test_a_private_project_never_reaches_a_non_member(world: World) -> None:
    secret = await world.api.project(world.owner, world.org, key="SEC", visibility="private")
    await world.call("POST", world.url("/issues", "SEC"), json={"title": "hidden"})
    await world.create(title="public")
    reporter_view = await read_all(world, world.reporter)
    projects = {c.project for b in reporter_view for c in b.changes}
    assert secret["id"] not in projects
    assert world.project["id"] in projects
    owner_view = await read_all(world, world.owner)
    assert secret["id"] in {c.project for b in owner_view for c in b.changes}
    outsider_view = await read_all(world, world.outsider)
    assert outsider_view == []  # not a member of the org: nothing at all


async def test_access_lost_at_seq_s_means_nothing_of_it_after_s(world: World) -> None:
    await world.create(title="before")
    seen = await read_all(world, world.viewer)
    assert any(c.project == world.project["id"] for b in seen for c in b.changes)
    status, _ = await world.call(
        "PATCH", world.url(), json={"visibility": "private"}
    )  # the viewer stays an explicit member: still sees it
    assert status == 200
    await world.call("DELETE", world.url(f"/members/{world.viewer['id']}"))  # removed at seq S
    removed_at = max(row["seq"] for row in await world.changes("project_member"))
    await world.create(title="after")
    after = await read_all(world, world.viewer, seq=removed_at - 1)
    assert all(c.project != world.project["id"] for b in after for c in b.changes)
    # ... and a reader still allowed sees those changes, so they exist
    everyone = await read_all(world, None, seq=removed_at)
    assert any(c.project == world.project["id"] for b in everyone for c in b.changes)


async def test_projects_filter_narrows_to_those_projects(world: World) -> None:
    other = await world.api.project(world.owner, world.org, key="OPS")
    await world.call("POST", world.url("/issues", "OPS"), json={"title": "ops"})
    await world.create(title="web")
    only_ops = await read_all(world, world.owner, projects=[other["id"]])
    assert {c.project for b in only_ops for c in b.changes} == {other["id"]}


async def test_a_consumer_reprocesses_until_it_advances_then_never(world: World) -> None:
    """Cursor and the consumer's own writes commit together (one unit of work)."""
    core, org_id = core_of(world), world.org["id"]
    async with core.tenants.lease(org_id) as db:
        await db.write(lambda conn: conn.execute("CREATE TABLE seen (seq INTEGER)"))
    await world.create(title="to handle")

    async def consume(crash: bool) -> list[int]:
        """Handle every batch after the cursor: write a row per batch, advance, commit."""
        start = await feed.cursor_of(core, org_id, "test-consumer")
        page = await feed.since(core, org_id, start)

        def work(uow: UnitOfWork) -> list[int]:
            handled = []
            for batch in page.batches:
                uow.conn.execute("INSERT INTO seen (seq) VALUES (?)", (batch.seq,))
                handled.append(batch.seq)
            if crash:
                raise RuntimeError("killed before the commit")
            uow.advance_cursor("test-consumer", page.next_seq)
            return handled

        return await mutate_org(core, org_id, Actor(None, "system"), work)

    with pytest.raises(RuntimeError):
        await consume(crash=True)  # processed, not committed
    assert await feed.cursor_of(core, org_id, "test-consumer") == 0
    first = await consume(crash=False)  # re-processes the same batches
    assert first and first[-1] == (await world.changes())[-1]["seq"]
    assert await consume(crash=False) == []  # after the advance: never again
    stored = [r["seq"] for r in await world.rows("SELECT seq FROM seen ORDER BY seq")]
    assert stored == first  # the crashed attempt left nothing
    cursor_row = await world.rows("SELECT * FROM consumer_cursors WHERE name = 'test-consumer'")
    assert cursor_row[0]["seq"] == first[-1]


async def test_advance_never_moves_a_cursor_backwards(world: World) -> None:
    core, org_id = core_of(world), world.org["id"]
    for seq in (5, 3, 9, 7):
        await mutate_org(core, org_id, Actor(None, "system"),
                     lambda uow, s=seq: uow.advance_cursor("c", s))  # fmt: skip
    assert await feed.cursor_of(core, org_id, "c") == 9
    assert await world.count("changes") > 0  # cursor moves are not change rows themselves
    assert not [r for r in await world.changes() if r["entity"] == "consumer_cursor"]


async def test_org_level_rows_reach_members_only(world: World, api: Api) -> None:
    newcomer = await api.user()
    await join(world, world.owner, world.org, newcomer)
    member_rows = [c for b in await read_all(world, world.reporter) for c in b.changes]
    assert any(c.entity == "org_member" for c in member_rows)
    assert await read_all(world, world.outsider) == []


async def test_events_one_per_batch_and_issue_serialized_once(world: World) -> None:
    """SPEC §7 shapes: a PATCH of three fields is one issue.updated event with three changes."""
    from tracker.services import event_objects

    issue = await world.create(title="Crash", priority="normal")
    head = (await world.changes())[-1]["seq"]
    status, _ = await world.call(
        "PATCH", world.url(f"/issues/{issue['number']}"),
        json={"title": "Crash on login", "priority": "major", "type": "bug"},
    )  # fmt: skip
    assert status == 200
    await world.call("POST", world.url(f"/issues/{issue['number']}/comments"), json={"body": "hi"})
    page = await feed.since(core_of(world), world.org["id"], head)
    events = await event_objects.render(core_of(world), world.org["id"], page.batches)
    assert [e.name for e in events] == ["issue.updated", "comment.created"]
    updated = events[0].data
    assert updated["seq"] == page.batches[0].seq
    assert updated["project"] == "WEB" and updated["origin"] == "api"
    assert updated["actor"]["id"] == world.owner["id"]
    assert updated["issue"]["key"] == issue["key"] and updated["issue"]["priority"] == "major"
    assert {c["field"]: c["new"] for c in updated["changes"]} == {
        "title": "Crash on login", "priority": "major", "type": "bug"}  # fmt: skip
    assert events[0].frame.startswith(b'{"type":"event","seq":')
    assert json.loads(events[0].frame) == {"type": "event", **updated}


async def test_event_names_for_status_moves_and_creation(world: World) -> None:
    from tracker.services import event_objects

    issue = await world.create(title="Move me")
    status, _ = await world.call(
        "PATCH", world.url(f"/issues/{issue['number']}"), json={"status": "In Progress"}
    )
    assert status == 200, _
    page = await feed.since(core_of(world), world.org["id"], 0)
    names = [e.name for e in await event_objects.render(core_of(world), world.org["id"],
                                                         page.batches)]  # fmt: skip
    assert names[-2:] == ["issue.created", "issue.status_changed"]


async def test_feed_consumer_handles_each_batch_once_and_resumes(world: World) -> None:
    from tracker.services.feed_consumer import FeedConsumer

    core, org_id = core_of(world), world.org["id"]
    async with core.tenants.lease(org_id) as db:
        await db.write(lambda conn: conn.execute("CREATE TABLE handled (seq INTEGER UNIQUE)"))

    async def handle(org: str, page: feed.FeedPage) -> None:
        def work(uow: UnitOfWork) -> None:
            for batch in page.batches:
                uow.conn.execute("INSERT INTO handled (seq) VALUES (?)", (batch.seq,))
            uow.advance_cursor("recorder", page.next_seq)

        await mutate_org(core, org, Actor(None, "system"), work)

    async def resume() -> list[str]:
        return [org_id]

    consumer = FeedConsumer(core, "recorder", handle, resume=resume, page_size=2)
    await consumer.start()
    try:
        for n in range(5):
            await world.create(title=f"issue {n}")
        await consumer.idle()
    finally:
        await consumer.stop()
    await world.create(title="while stopped")  # a backlog for the restart
    again = FeedConsumer(core, "recorder", handle, resume=resume, page_size=2)
    await again.start()
    try:
        await again.idle()
    finally:
        await again.stop()
    log = await world.changes()
    batch_heads = sorted({max(r["seq"] for r in log if r["batch"] == b)
                          for b in {r["batch"] for r in log}})  # fmt: skip
    handled = [r["seq"] for r in await world.rows("SELECT seq FROM handled ORDER BY seq")]
    assert handled == batch_heads  # every batch, once (UNIQUE would refuse a second time)
