"""Sprints over HTTP: the Scrum cycle with its burndown, state conflicts, lists."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.issues_world import World, make_world
from tracker.domain.changes import ChangeBatch
from tracker.http.keys import CORE

TODAY = datetime.now(UTC).date()
YESTERDAY, TOMORROW = TODAY - timedelta(days=1), TODAY + timedelta(days=1)


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


async def sprint(world: World, name: str = "Sprint 1", **body: Any) -> dict[str, Any]:
    body = {"name": name, "starts_at": str(YESTERDAY), "ends_at": str(TOMORROW), **body}
    status, created = await world.call("POST", world.url("/sprints"), world.developer, json=body)
    assert status == 201, created
    return created  # type: ignore[no-any-return]


async def act(world: World, sprint_id: str, verb: str, **body: Any) -> tuple[int, Any]:
    kwargs = {"json": body} if verb == "complete" else {}
    return await world.call("POST", world.url(f"/sprints/{sprint_id}/{verb}"), **kwargs)


async def patch(world: World, number: int, **body: Any) -> dict[str, Any]:
    status, issue = await world.call(
        "PATCH", world.url(f"/issues/{number}"), world.developer, json=body
    )
    assert status == 200, issue
    return issue  # type: ignore[no-any-return]


async def burndown(world: World, sprint_id: str) -> list[tuple[Any, ...]]:
    status, body = await world.call("GET", world.url(f"/sprints/{sprint_id}/burndown"))
    assert status == 200
    return [(d["date"], d["remaining_issues"], d["remaining_estimate"], d["scope_issues"])
            for d in body["days"]]  # fmt: skip


async def test_full_scrum_cycle_with_burndown(world: World) -> None:
    events: list[ChangeBatch] = []
    world.client.app[CORE].events.subscribe(events.append)
    s1, s2 = await sprint(world), await sprint(world, "Sprint 2", starts_at=None, ends_at=None)
    a, b, c, d = [await world.create(title=t, estimate=e)
                  for t, e in (("A", 60), ("B", 30), ("C", 10), ("D", 20))]  # fmt: skip
    for issue in (a, b, c):  # plan
        await patch(world, issue["number"], sprint_id=s1["id"])
    status, started = await act(world, s1["id"], "start")
    assert status == 200 and started["state"] == "active" and started["started_at"]
    # work the board
    await patch(world, a["number"], status="In Progress")
    await patch(world, a["number"], status="Resolved")
    await patch(world, b["number"], status="Closed")
    await patch(world, c["number"], estimate=15)
    # hand computation: nothing existed at the end of yesterday; today A and B are done,
    # C (15 min) remains of the 3 planned; tomorrow has not begun
    expected = [
        (str(YESTERDAY), 0, 0, 0),
        (str(TODAY), 1, 15, 3),
        (str(TOMORROW), None, None, None),
    ]
    assert await burndown(world, s1["id"]) == expected
    status, done = await act(world, s1["id"], "complete", move_to=s2["id"])
    assert status == 200 and done["state"] == "completed" and done["completed_at"]
    stored = await world.rows("SELECT number, sprint_id FROM issues ORDER BY number")
    assert [r["sprint_id"] for r in stored] == [s1["id"], s1["id"], s2["id"], None]
    moved = [ch for ch in await world.changes("issue") if ch["field"] == "sprint_id"]
    assert (moved[-1]["entity_id"], moved[-1]["old"], moved[-1]["new"]) == (
        c["id"], s1["id"], s2["id"],
    )  # fmt: skip
    # after the fact: C keeps changing in sprint 2; sprint 1's burndown stays as it ended
    await patch(world, c["number"], status="Closed", estimate=99)
    assert await burndown(world, s1["id"]) == expected
    # the sprint board keeps the finished issues by stage; the backlog holds D only
    status, board = await world.call("GET", world.url(f"/sprints/{s1['id']}/board"))
    by_stage = {col["stage"]["name"]: [i["key"] for i in col["items"]] for col in board["columns"]}
    assert by_stage == {"Open": [], "In Progress": [], "Resolved": [a["key"]],
                        "Closed": [b["key"]]}  # fmt: skip
    status, backlog = await world.call("GET", world.url("/backlog"))
    assert [i["key"] for i in backlog["items"]] == [d["key"]]
    # the log says what happened to the sprint, in order, as events too
    states = [(ch["old"], ch["new"]) for ch in await world.changes("sprint")
              if ch["entity_id"] == s1["id"] and ch["field"] == "state"]  # fmt: skip
    assert states == [("planned", "active"), ("active", "completed")]
    published = [(ch.entity, ch.field, ch.new) for batch in events for ch in batch.changes]
    assert ("sprint", "state", "active") in published
    assert ("sprint", "state", "completed") in published


async def test_leftovers_to_the_backlog(world: World) -> None:
    s1 = await sprint(world)
    issue = await world.create(title="left over", sprint_id=s1["id"])
    assert (await act(world, s1["id"], "start"))[0] == 200
    status, _ = await act(world, s1["id"], "complete")  # default: backlog
    assert status == 200
    rows = await world.rows("SELECT sprint_id FROM issues WHERE id = ?", issue["id"])
    assert rows == [{"sprint_id": None}]
    status, backlog = await world.call("GET", world.url("/backlog"))
    assert [i["number"] for i in backlog["items"]] == [issue["number"]]


async def test_sprint_state_conflicts(world: World) -> None:
    s1, s2 = await sprint(world), await sprint(world, "Sprint 2")
    status, problem = await act(world, s1["id"], "complete")
    assert status == 409 and "has not been started" in problem["detail"]
    assert (await act(world, s1["id"], "start"))[0] == 200
    status, problem = await act(world, s2["id"], "start")
    assert status == 409 and "'Sprint 1' is already active" in problem["detail"]
    status, problem = await act(world, s1["id"], "start")
    assert status == 409 and "already active" in problem["detail"]
    assert (await act(world, s1["id"], "complete"))[0] == 200
    status, problem = await act(world, s1["id"], "start")
    assert status == 409 and "completed sprint cannot be started" in problem["detail"]
    status, problem = await act(world, s1["id"], "complete")
    assert status == 409 and "already completed" in problem["detail"]
    assert (await act(world, s2["id"], "start"))[0] == 200  # s1 no longer blocks
    status, _ = await world.call("PATCH", world.url(f"/sprints/{s1['id']}"), json={"name": "x"})
    assert status == 409
    rows = await world.rows("SELECT name, state FROM sprints ORDER BY name")
    assert rows == [{"name": "Sprint 1", "state": "completed"},
                    {"name": "Sprint 2", "state": "active"}]  # fmt: skip


async def test_completing_into_a_bad_target(world: World) -> None:
    s1, s2 = await sprint(world), await sprint(world, "Sprint 2")
    await act(world, s2["id"], "start")
    await act(world, s2["id"], "complete")
    await act(world, s1["id"], "start")
    assert (await act(world, s1["id"], "complete", move_to=s2["id"]))[0] == 409
    assert (await act(world, s1["id"], "complete", move_to="nope"))[0] == 422
    assert (await act(world, s1["id"], "complete", move_to=s1["id"]))[0] == 422
    assert (await world.rows("SELECT state FROM sprints WHERE id = ?", s1["id"]))[0] == {
        "state": "active"
    }


async def test_starting_needs_dates_and_roles(world: World) -> None:
    undated = await sprint(world, starts_at=None, ends_at=None)
    status, problem = await act(world, undated["id"], "start")
    assert status == 422 and {e["field"] for e in problem["errors"]} == {"starts_at", "ends_at"}
    dated = await sprint(world, "Dated")
    url = world.url(f"/sprints/{dated['id']}/start")
    assert (await world.call("POST", url, world.developer))[0] == 403  # admins start sprints
    body = {"name": "R"}
    assert (await world.call("POST", world.url("/sprints"), world.reporter, json=body))[0] == 403
    assert (await world.call("GET", world.url(f"/sprints/{dated['id']}"), world.viewer))[0] == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "starts_at": "2024-05-02", "ends_at": "2024-05-01"}, "ends_at"),
        ({"name": "x", "starts_at": "someday"}, "starts_at"),
        ({"name": ""}, "name"),
        ({"name": "x", "state": "active"}, "state"),
    ],
)
async def test_sprint_input_is_validated(world: World, body: dict[str, Any], field: str) -> None:
    status, problem = await world.call("POST", world.url("/sprints"), json=body)
    assert status == 422 and field in problem["detail"]


async def test_update_sprint_logs_fields(world: World) -> None:
    s1 = await sprint(world)
    body = {"name": "Renamed", "goal": "ship", "ends_at": f"{TOMORROW}T12:00:00+01:00"}
    status, updated = await world.call("PATCH", world.url(f"/sprints/{s1['id']}"), json=body)
    assert status == 200 and updated["ends_at"] == f"{TOMORROW}T11:00:00.000Z"
    assert updated["version"] == 2
    fields = {ch["field"] for ch in await world.changes("sprint") if ch["op"] == "update"}
    assert fields == {"name", "goal", "ends_at"}


async def test_list_sprints_pages_and_filters(world: World) -> None:
    made = [await sprint(world, f"S{n}") for n in range(5)]
    await act(world, made[1]["id"], "start")
    status, page = await world.call("GET", world.url("/sprints?limit=2"))
    assert [s["name"] for s in page["items"]] == ["S0", "S1"] and page["next_cursor"]
    status, rest = await world.call(
        "GET", world.url(f"/sprints?limit=10&cursor={page['next_cursor']}")
    )
    assert status == 200
    assert [s["name"] for s in rest["items"]] == ["S2", "S3", "S4"] and rest["next_cursor"] is None
    _, active = await world.call("GET", world.url("/sprints?state=active"))
    assert [s["name"] for s in active["items"]] == ["S1"]
    assert (await world.call("GET", world.url("/sprints?cursor=%%%garbled")))[0] == 400
    assert (await world.call("GET", world.url("/sprints/nope")))[0] == 404
    assert (await world.call("GET", world.url("/sprints/nope/burndown")))[0] == 404
