"""Stages and transition rules over HTTP: CRUD, reorder, delete with a target, rules per role."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.issues_world import World, make_world


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


async def stages(world: World) -> list[dict[str, Any]]:
    status, body = await world.call("GET", world.url("/stages"), world.viewer)
    assert status == 200
    return body["items"]  # type: ignore[no-any-return]


async def stage_id(world: World, name: str) -> str:
    return next(s["id"] for s in await stages(world) if s["name"] == name)


async def test_new_project_has_the_default_stages(world: World) -> None:
    found = await stages(world)
    assert [(s["name"], s["category"], s["position"]) for s in found] == [
        ("Open", "todo", 0), ("In Progress", "in_progress", 1),
        ("Resolved", "done", 2), ("Closed", "done", 3),
    ]  # fmt: skip


async def test_add_stage_at_a_position_shifts_the_rest(world: World) -> None:
    body = {"name": "Review", "category": "in_progress", "position": 2}
    status, stage = await world.call("POST", world.url("/stages"), json=body)
    assert status == 201 and stage["position"] == 2
    assert [s["name"] for s in await stages(world)] == [
        "Open", "In Progress", "Review", "Resolved", "Closed",
    ]  # fmt: skip
    logged = [(c["op"], c["field"], c["new"]) for c in await world.changes("stage")][4:]
    assert logged[:2] == [("update", "position", 3), ("update", "position", 4)]
    assert logged[2][0] == "create" and logged[2][2]["name"] == "Review"


@pytest.mark.parametrize(
    ("who", "body", "expected"),
    [
        ("owner", {"name": "open", "category": "todo"}, 409),  # names are case-insensitive
        ("owner", {"name": "X", "category": "later"}, 422),
        ("owner", {"name": "   ", "category": "todo"}, 422),
        ("owner", {"name": "X", "category": "todo", "position": -1}, 422),
        ("developer", {"name": "X", "category": "todo"}, 403),
        ("outsider", {"name": "X", "category": "todo"}, 404),
    ],
)
async def test_add_stage_refusals(
    world: World, who: str, body: dict[str, Any], expected: int
) -> None:
    status, _ = await world.call("POST", world.url("/stages"), getattr(world, who), json=body)
    assert status == expected
    assert len(await stages(world)) == 4


async def test_reorder_needs_every_stage_once(world: World) -> None:
    ids = [s["id"] for s in await stages(world)]
    status, body = await world.call("PATCH", world.url("/stages"), json={"order": ids[::-1]})
    assert status == 200
    assert [s["name"] for s in body["items"]] == ["Closed", "Resolved", "In Progress", "Open"]
    for bad in (ids[:3], [*ids, ids[0]], [*ids[:3], "nope"]):
        status, problem = await world.call("PATCH", world.url("/stages"), json={"order": bad})
        assert status == 422, problem
    assert next(s["name"] for s in await stages(world)) == "Closed"


async def test_rename_recategorise_and_move_one_stage(world: World) -> None:
    issue = await world.create(title="in review", status="In Progress")
    sid = await stage_id(world, "In Progress")
    body = {"name": "Review", "category": "done", "position": 3}
    status, stage = await world.call("PATCH", world.url(f"/stages/{sid}"), json=body)
    assert status == 200
    assert (stage["name"], stage["category"], stage["position"]) == ("Review", "done", 3)
    status, shown = await world.call("GET", world.url(f"/issues/{issue['number']}"))
    assert shown["status"] == "Review" and shown["resolved_at"] is not None  # now done
    fields = {c["field"] for c in await world.changes("stage") if c["entity_id"] == sid}
    assert {"name", "category", "position"} <= fields
    status, _ = await world.call("PATCH", world.url(f"/stages/{sid}"), json={"name": "Open"})
    assert status == 409
    status, _ = await world.call("PATCH", world.url("/stages/nope"), json={"name": "Z"})
    assert status == 404


async def test_delete_stage_in_use_without_target_moves_nothing(world: World) -> None:
    numbers = [(await world.create(title=f"t{n}", status="In Progress"))["number"]
               for n in range(3)]  # fmt: skip
    sid = await stage_id(world, "In Progress")
    before = len(await world.changes())
    status, problem = await world.call("DELETE", world.url(f"/stages/{sid}"))
    assert status == 409 and "3 issue" in problem["detail"]
    assert len(await world.changes()) == before
    rows = await world.rows("SELECT count(*) AS n FROM issues WHERE stage_id = ?", sid)
    assert rows[0]["n"] == 3 and len(await stages(world)) == 4
    assert numbers


async def test_delete_stage_with_target_moves_all_and_logs_history(world: World) -> None:
    issues = [await world.create(title=f"t{n}", status="In Progress") for n in range(3)]
    await world.create(title="already resolved", status="Resolved")
    deleted = issues[2]["number"]
    assert (await world.call("DELETE", world.url(f"/issues/{deleted}")))[0] == 204
    sid, target = await stage_id(world, "In Progress"), await stage_id(world, "Resolved")
    url = world.url(f"/stages/{sid}?move_to={target}")
    status, _ = await world.call("DELETE", url)
    assert status == 204
    assert [s["name"] for s in await stages(world)] == ["Open", "Resolved", "Closed"]
    assert [s["position"] for s in await stages(world)] == [0, 1, 2]
    rows = await world.rows(
        "SELECT number, stage_id, rank, resolved_at FROM issues ORDER BY number"
    )
    assert {r["stage_id"] for r in rows} == {target}  # the soft-deleted one moved too
    assert all(r["resolved_at"] for r in rows)  # entering a done stage resolves
    column = [r["number"] for r in sorted(rows, key=lambda r: r["rank"])]
    assert column == [4, 1, 2, 3]  # moved issues below the target's cards, in their order
    for issue in issues:
        logged = {c["field"]: (c["old"], c["new"]) for c in await world.changes("issue")
                  if c["entity_id"] == issue["id"] and c["op"] == "update"}  # fmt: skip
        assert logged["status"] == ("In Progress", "Resolved")
        assert logged["resolved_at"][0] is None
    stage_log = [c for c in await world.changes("stage") if c["entity_id"] == sid]
    assert stage_log[-1]["op"] == "delete" and stage_log[-1]["old"]["name"] == "In Progress"


@pytest.mark.parametrize("move_to", ["nope", "self"])
async def test_delete_stage_with_a_bad_target_is_422(world: World, move_to: str) -> None:
    sid = await stage_id(world, "Open")
    target = sid if move_to == "self" else move_to
    status, _ = await world.call("DELETE", world.url(f"/stages/{sid}?move_to={target}"))
    assert status == 422


async def test_the_last_stage_cannot_go(world: World) -> None:
    for name in ("In Progress", "Resolved", "Closed"):
        sid = await stage_id(world, name)
        assert (await world.call("DELETE", world.url(f"/stages/{sid}")))[0] == 204
    status, _ = await world.call("DELETE", world.url(f"/stages/{await stage_id(world, 'Open')}"))
    assert status == 409


# --- transition rules ------------------------------------------------------------------------


async def put_rules(world: World, *rules: tuple[str, str, str]) -> tuple[int, Any]:
    ids = {s["name"]: s["id"] for s in await stages(world)}
    body = {"rules": [{"from_stage_id": ids[a], "to_stage_id": ids[b], "min_role": role}
                      for a, b, role in rules]}  # fmt: skip
    return await world.call("PUT", world.url("/transitions"), json=body)


async def test_transition_rules_round_trip_and_log(world: World) -> None:
    status, body = await world.call("GET", world.url("/transitions"), world.viewer)
    assert (status, body) == (200, {"rules": []})
    status, body = await put_rules(world, ("Open", "In Progress", "developer"))
    assert status == 200 and body["rules"][0]["min_role"] == "developer"
    logged = [c for c in await world.changes("project") if c["field"] == "transitions"]
    assert logged[-1]["old"] == [] and len(logged[-1]["new"]) == 1
    status, _ = await world.call("PUT", world.url("/transitions"), world.developer,
                                 json={"rules": []})  # fmt: skip
    assert status == 403
    open_id = await stage_id(world, "Open")
    bad = {"rules": [{"from_stage_id": open_id, "to_stage_id": open_id}]}
    assert (await world.call("PUT", world.url("/transitions"), json=bad))[0] == 422
    # deleting a stage drops the rules that name it, and logs that
    sid = await stage_id(world, "In Progress")
    assert (await world.call("DELETE", world.url(f"/stages/{sid}")))[0] == 204
    assert (await world.call("GET", world.url("/transitions")))[1] == {"rules": []}


async def move(world: World, who: dict[str, Any], number: int, status: str) -> int:
    code, _ = await world.call(
        "PATCH", world.url(f"/issues/{number}"), who, json={"status": status}
    )
    return code


async def test_transition_rules_are_enforced_per_role(world: World) -> None:
    status, _ = await put_rules(
        world,
        ("Open", "In Progress", "developer"),
        ("In Progress", "Resolved", "admin"),
        ("Resolved", "Closed", "developer"),
    )
    assert status == 200
    mine = await world.create(world.reporter, title="reported by the reporter")
    n = mine["number"]
    assert await move(world, world.reporter, n, "In Progress") == 403  # rule says developer
    assert await move(world, world.viewer, n, "In Progress") == 403
    assert await move(world, world.developer, n, "Resolved") == 409  # no rule Open->Resolved
    assert await move(world, world.owner, n, "Closed") == 409  # rules bind admins too
    assert await move(world, world.developer, n, "In Progress") == 200
    assert await move(world, world.developer, n, "Resolved") == 403  # this one needs admin
    assert await move(world, world.owner, n, "Resolved") == 200
    assert await move(world, world.developer, n, "Closed") == 200
    assert await move(world, world.developer, n, "closed") == 200  # same stage: no move
    rows = await world.rows("SELECT s.name FROM issues i JOIN stages s ON s.id = i.stage_id")
    assert rows == [{"name": "Closed"}]
    statuses = [(c["old"], c["new"]) for c in await world.changes("issue")
                if c["field"] == "status"]  # fmt: skip
    assert statuses == [("Open", "In Progress"), ("In Progress", "Resolved"),
                        ("Resolved", "Closed")]  # fmt: skip
