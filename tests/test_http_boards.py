"""The Kanban board, card moves (status + before/after) and the backlog over HTTP."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.issues_world import World, make_world
from tracker.http.keys import CORE

COLUMNS = ["Open", "In Progress", "Resolved", "Closed"]


@pytest.fixture
async def world(api: Api, client: TestClient) -> World:
    return await make_world(api, client)


async def board(world: World, query: str = "", who: str = "viewer") -> dict[str, Any]:
    status, body = await world.call("GET", world.url("/board" + query), getattr(world, who))
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def numbers_by_column(body: dict[str, Any]) -> dict[str, list[int]]:
    return {col["stage"]["name"]: [c["number"] for c in col["items"]] for col in body["columns"]}


async def move(world: World, number: int, **body: Any) -> tuple[int, Any]:
    return await world.call("PATCH", world.url(f"/issues/{number}"), world.developer, json=body)


async def test_board_shows_columns_counts_and_ranked_cards(world: World) -> None:
    made = [await world.create(title=f"card {n}", status=COLUMNS[n % 2], priority="major",
                               assignees=[world.developer["id"]] if n == 0 else [])
            for n in range(5)]  # fmt: skip
    body = await board(world)
    assert [c["stage"]["name"] for c in body["columns"]] == COLUMNS
    assert [c["count"] for c in body["columns"]] == [3, 2, 0, 0]
    assert numbers_by_column(body)["Open"] == [1, 3, 5]
    card = body["columns"][0]["items"][0]
    assert card == {
        "id": made[0]["id"], "key": "WEB-1", "number": 1, "title": "card 0", "type": "task",
        "priority": "major", "stage_id": body["columns"][0]["stage"]["id"],
        "assignees": [world.developer["id"]], "estimate": None, "rank": card["rank"],
    }  # fmt: skip
    capped = await board(world, "?limit=2")
    assert numbers_by_column(capped)["Open"] == [1, 3] and capped["columns"][0]["count"] == 3
    await world.call("DELETE", world.url("/issues/3"))
    assert numbers_by_column(await board(world))["Open"] == [1, 5]
    assert (await world.call("GET", world.url("/board"), world.outsider))[0] == 404
    assert (await world.call("GET", world.url("/board?limit=201")))[0] == 422


async def test_board_filtered_with_q(world: World) -> None:
    await world.create(title="Login crash", priority="critical")
    await world.create(title="Login slow", status="In Progress")
    await world.create(title="Logout crash", assignees=[world.developer["id"]])
    body = await board(world, "?q=login")
    assert numbers_by_column(body) == {"Open": [1], "In Progress": [2], "Resolved": [],
                                       "Closed": []}  # fmt: skip
    assert [c["count"] for c in body["columns"]] == [1, 1, 0, 0]
    assert numbers_by_column(await board(world, "?q=crash%20-priority:critical"))["Open"] == [3]
    email = world.developer["email"]
    assert numbers_by_column(await board(world, f"?q=assignee:{email}"))["Open"] == [3]
    status, problem = await world.call("GET", world.url("/board?q=status:"))
    assert status == 400 and "position" in problem


async def test_move_card_between_and_within_columns(world: World) -> None:
    for n in range(4):
        await world.create(title=f"card {n}")
    status, issue = await move(world, 4, status="In Progress")
    assert status == 200 and issue["status"] == "In Progress"
    assert (await move(world, 3, status="In Progress", before=4))[0] == 200
    assert (await move(world, 1, after=2))[0] == 200  # reorder in place, no status
    assert (await move(world, 2, status="In Progress", after=3, before=4))[0] == 200
    assert numbers_by_column(await board(world))["Open"] == [1]
    assert numbers_by_column(await board(world))["In Progress"] == [3, 2, 4]
    logged = [(c["field"], c["new"]) for c in await world.changes("issue")
              if c["entity_id"] == issue["id"] and c["op"] == "update"]  # fmt: skip
    assert [f for f, _ in logged] == ["rank", "status"]
    batches = await world.rows(
        "SELECT batch, count(*) AS n FROM changes WHERE entity = 'issue' AND op = 'update' "
        "GROUP BY batch ORDER BY min(seq)"
    )
    assert [b["n"] for b in batches] == [2, 2, 1, 2]  # status + rank together; rank alone


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "In Progress", "before": 2}, "before"),  # 2 is not in that column
        ({"before": 1}, "before"),  # itself
        ({"after": 99}, "after"),
        ({"after": 3, "before": 2}, "before"),  # not adjacent in that order
    ],
)
async def test_bad_positions_are_422(world: World, body: dict[str, Any], field: str) -> None:
    for n in range(3):
        await world.create(title=f"card {n}")
    status, problem = await move(world, 1, **body)
    assert status == 422 and problem["errors"][0]["field"] == field
    assert numbers_by_column(await board(world))["Open"] == [1, 2, 3]


async def total_changes(world: World) -> int:
    core = world.client.app[CORE]
    async with core.tenants.lease(world.org["id"]) as db:
        return int(await db.read(lambda conn: conn.total_changes))


async def test_100_random_moves_keep_a_strict_order_touching_one_issue_row(world: World) -> None:
    rng = random.Random(6)
    for n in range(24):
        await world.create(title=f"card {n}", status=COLUMNS[n % 4])
    model = {name: [n for n in range(1, 25) if COLUMNS[(n - 1) % 4] == name] for name in COLUMNS}
    issue_rows_touched = []
    for _ in range(100):
        number = rng.randint(1, 24)
        target = rng.choice(COLUMNS)
        source = next(name for name, column in model.items() if number in column)
        for column in model.values():
            if number in column:
                column.remove(number)
        others = model[target]
        position = rng.randint(0, len(others))
        body: dict[str, Any] = {"status": target}
        if others and position < len(others):
            body["before"] = others[position]
        elif others:
            body["after"] = others[-1]
        others.insert(position, number)
        before = await total_changes(world)
        last_seq = (await world.rows("SELECT coalesce(max(seq), 0) AS s FROM changes"))[0]["s"]
        status, _ = await move(world, number, **body)
        assert status == 200
        logged = await world.rows(
            "SELECT (SELECT count(*) FROM changes WHERE seq > ?) "
            "+ (SELECT count(*) FROM issue_changes WHERE seq > ?) AS n",
            last_seq,
            last_seq,
        )
        # A move to another column also adjusts two stage_counts rows (by trigger).
        counters = 2 if source != target else 0
        touched = await total_changes(world) - before - logged[0]["n"]
        issue_rows_touched.append(touched - counters if touched else 0)
    assert set(issue_rows_touched) <= {0, 1}  # 0: a "move" to where the card already was
    assert issue_rows_touched.count(1) > 90
    body = await board(world, "?limit=200")
    assert numbers_by_column(body) == model
    for column in body["columns"]:
        ranks = [c["rank"] for c in column["items"]]
        assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert sum(c["count"] for c in body["columns"]) == 24


async def test_rules_and_roles_apply_to_card_moves(world: World) -> None:
    await world.create(title="a")
    ids = {c["stage"]["name"]: c["stage"]["id"] for c in (await board(world))["columns"]}
    rules = {"rules": [{"from_stage_id": ids["Open"], "to_stage_id": ids["In Progress"],
                        "min_role": "admin"}]}  # fmt: skip
    assert (await world.call("PUT", world.url("/transitions"), json=rules))[0] == 200
    assert (await move(world, 1, status="In Progress"))[0] == 403
    assert (await move(world, 1, status="Closed"))[0] == 409
    assert (await world.call("PATCH", world.url("/issues/1"), world.reporter,
                             json={"status": "In Progress"}))[0] == 403  # fmt: skip
    assert numbers_by_column(await board(world))["Open"] == [1]


# --- backlog ----------------------------------------------------------------------------------


async def backlog(world: World, query: str = "") -> dict[str, Any]:
    status, body = await world.call("GET", world.url("/backlog" + query), world.viewer)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def backlog_move(world: World, who: str = "developer", **body: Any) -> tuple[int, Any]:
    return await world.call("POST", world.url("/backlog/move"), getattr(world, who), json=body)


async def test_backlog_is_open_sprintless_issues_in_rank_order(world: World) -> None:
    for n in range(6):
        await world.create(title=f"item {n}")
    await move(world, 2, status="Closed")
    status, sprint = await world.call("POST", world.url("/sprints"), json={"name": "S"})
    await move(world, 3, sprint_id=sprint["id"])
    assert [c["number"] for c in (await backlog(world))["items"]] == [1, 4, 5, 6]
    status, card = await backlog_move(world, issue=6, before=1)
    assert status == 200 and card["number"] == 6
    assert (await backlog_move(world, issue=1, after=5))[0] == 200
    assert (await backlog_move(world, issue=4, after=1))[0] == 200  # to the bottom
    new = await world.create(title="new arrivals go last")
    order = [c["number"] for c in (await backlog(world))["items"]]
    assert order == [6, 5, 1, 4, new["number"]]
    first = await backlog(world, "?limit=2")
    rest = await backlog(world, f"?limit=10&cursor={first['next_cursor']}")
    assert [c["number"] for c in first["items"] + rest["items"]] == order
    assert rest["next_cursor"] is None
    await move(world, 3, sprint_id=None)  # back from the sprint with its own key: by number
    assert [c["number"] for c in (await backlog(world))["items"]] == [6, 3, 5, 1, 4, 7]
    logged = [c for c in await world.changes("issue") if c["field"] == "backlog_rank"]
    assert len(logged) == 3 and logged[0]["old"] is None


@pytest.mark.parametrize(
    ("body", "who", "expected"),
    [
        ({"issue": 1, "before": 2, "after": 2}, "developer", 422),
        ({"issue": 1}, "developer", 422),
        ({"issue": 1, "before": 1}, "developer", 422),
        ({"issue": 1, "before": 3}, "developer", 422),  # 3 is closed: not in the backlog
        ({"issue": 1, "before": 2}, "reporter", 403),
        ({"issue": 1, "before": 2}, "outsider", 404),
    ],
)
async def test_backlog_move_refusals(
    world: World, body: dict[str, Any], who: str, expected: int
) -> None:
    for n in range(3):
        await world.create(title=f"item {n}")
    await move(world, 3, status="Closed")
    assert (await backlog_move(world, who, **body))[0] == expected
    assert [c["number"] for c in (await backlog(world))["items"]] == [1, 2]


async def test_kept_column_counts_match_a_real_count_after_every_kind_of_change(
    world: World,
) -> None:
    """stage_counts (trigger-kept) equals count(*) after create, move, delete, restore,
    and deleting a stage whose issues move to another."""
    for n in range(6):
        await world.create(title=f"card {n}", status=COLUMNS[n % 3])
    assert (await move(world, 1, status=COLUMNS[3]))[0] == 200
    assert (await world.call("DELETE", world.url("/issues/2")))[0] in (200, 204)
    assert (await world.call("DELETE", world.url("/issues/3")))[0] in (200, 204)
    assert (await world.call("POST", world.url("/issues/3/restore")))[0] == 200
    columns = {c["stage"]["name"]: c["stage"]["id"] for c in (await board(world))["columns"]}
    gone, target = columns[COLUMNS[1]], columns[COLUMNS[0]]
    status, _ = await world.call("DELETE", world.url(f"/stages/{gone}?move_to={target}"))
    assert status in (200, 204)
    kept = await world.rows(
        "SELECT c.stage_id, c.live FROM stage_counts c JOIN stages s ON s.id = c.stage_id"
    )
    real = await world.rows(
        "SELECT s.id AS stage_id, (SELECT count(*) FROM issues i WHERE i.stage_id = s.id "
        "AND i.deleted_at IS NULL) AS live FROM stages s"
    )
    assert sorted((r["stage_id"], r["live"]) for r in kept) == sorted(
        (r["stage_id"], r["live"]) for r in real
    )
    body = await board(world)
    assert sum(c["count"] for c in body["columns"]) == 5
