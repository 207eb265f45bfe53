"""GET .../issues/{n}/history: every change about one issue, newest first, with its actor."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.issues_world import World, make_world


@pytest.fixture
async def world(api: Api, client: Any) -> World:
    return await make_world(api, client)


async def history(world: World, number: int = 1, query: str = "") -> list[dict[str, Any]]:
    status, page = await world.call("GET", world.url(f"/issues/{number}/history{query}"))
    assert status == 200, page
    return list(page["items"])


async def test_history_records_every_kind_of_change_with_actor(world: World) -> None:
    dev, owner = world.developer, world.owner
    issue = await world.create(dev, title="First", tags=["ui"])
    await world.create(title="Other")
    steps: list[tuple[dict[str, Any], str, str, Any]] = [
        (dev, "PATCH", "/issues/1", {"title": "Second", "priority": "major"}),
        (dev, "PUT", "/issues/1/tags", {"tags": ["api"]}),
        (owner, "PUT", "/issues/1/assignees", {"user_ids": [dev["id"]]}),
        (world.reporter, "POST", "/issues/1/comments", {"body": "me too"}),
        (dev, "POST", "/issues/1/relations", {"type": "blocks", "issue": 2}),
        (dev, "POST", "/issues/1/time-entries", {"seconds_spent": 600}),
        (owner, "DELETE", "/issues/1", None),
        (owner, "POST", "/issues/1/restore", None),
    ]
    for who, method, path, body in steps:
        status, answer = await world.call(method, world.url(path), who, json=body)
        assert status < 300, (path, answer)

    items = await history(world)
    assert [i["seq"] for i in items] == sorted((i["seq"] for i in items), reverse=True)
    summary = [(i["entity"], i["op"], i["field"], i["actor"]) for i in reversed(items)]
    assert summary == [
        ("issue", "create", None, dev["id"]),
        ("issue_tag", "create", None, dev["id"]),
        ("issue", "update", "title", dev["id"]),
        ("issue", "update", "priority", dev["id"]),
        ("issue_tag", "delete", None, dev["id"]),
        ("issue_tag", "create", None, dev["id"]),
        ("issue_assignee", "create", None, owner["id"]),
        ("comment", "create", None, world.reporter["id"]),
        ("relation", "create", None, dev["id"]),
        ("time_entry", "create", None, dev["id"]),
        ("issue", "delete", None, owner["id"]),
        ("issue", "restore", None, owner["id"]),
    ]
    by_field = {i["field"]: i for i in items if i["field"]}
    assert (by_field["title"]["old"], by_field["title"]["new"]) == ("First", "Second")
    assert (by_field["priority"]["old"], by_field["priority"]["new"]) == ("normal", "major")
    tag_rows = [i for i in items if i["entity"] == "issue_tag"]
    assert {(i["op"], (i["new"] or i["old"])["name"]) for i in tag_rows} == {
        ("create", "ui"), ("delete", "ui"), ("create", "api"),
    }  # fmt: skip
    assert items[-1]["new"]["title"] == "First" and items[-1]["new"]["id"] == issue["id"]
    assert items[0]["new"]["title"] == "Second" and items[0]["new"]["tags"] == ["api"]
    assert all(i["origin"] == "api" for i in items)
    # rows about the other issue (its side of the relation) stay in its own history
    other = await history(world, 2)
    assert [(i["entity"], i["op"]) for i in reversed(other)] == [
        ("issue", "create"), ("relation", "create"),
    ]  # fmt: skip


async def test_history_pages_newest_first(world: World) -> None:
    await world.create(title="v0")
    for n in range(1, 8):
        await world.call("PATCH", world.url("/issues/1"), json={"title": f"v{n}"})
    everything = await history(world)
    seen: list[int] = []
    cursor = ""
    while True:
        status, page = await world.call("GET", world.url(f"/issues/1/history?limit=3{cursor}"))
        assert status == 200 and len(page["items"]) <= 3
        seen += [i["seq"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == [i["seq"] for i in everything] and len(seen) == 8


async def test_history_of_missing_or_deleted_issue_and_bad_cursors(world: World) -> None:
    await world.create()
    await world.create()
    assert (await world.call("DELETE", world.url("/issues/2")))[0] == 204
    for path, status in (
        ("/issues/3/history", 404), ("/issues/2/history", 404),
        ("/issues/1/history?cursor=zz", 400), ("/issues/1/history?cursor=WyJhIl0", 400),
        ("/issues/1/history?limit=0", 422), ("/issues/1/history?limit=500", 422),
    ):  # fmt: skip
        got, body = await world.call("GET", world.url(path))
        assert got == status, (path, body)
    got, _ = await world.call("GET", world.url("/issues/1/history"), world.outsider)
    assert got == 404


async def test_history_reads_one_index_range(world: World) -> None:
    await world.create()
    plan = await world.rows(
        "EXPLAIN QUERY PLAN SELECT c.* FROM issue_changes ic JOIN changes c ON c.seq = ic.seq "
        "WHERE ic.issue_id = ? AND ic.seq < ? ORDER BY ic.seq DESC LIMIT 5",
        "x", 10,
    )  # fmt: skip
    details = [row["detail"] for row in plan]
    assert any("SEARCH ic USING PRIMARY KEY (issue_id=? AND seq<?)" in d for d in details), plan
    assert not any("TEMP B-TREE" in d for d in details), plan
