"""Time entries over HTTP: totals on the issue and per user, deletion rights, bad input."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.test_http_comments import Team, make_team


@pytest.fixture
async def team(api: Any, client: TestClient) -> Team:
    return await make_team(api, client)


async def log(team: Team, number: int, body: dict[str, Any], who: str = "developer") -> Any:
    return await team.client.post(
        team.url(f"/issues/{number}/time-entries"), json=body,
        headers=getattr(team, who)["headers"],
    )  # fmt: skip


async def test_log_time_stores_entry_total_and_change(team: Team) -> None:
    number = await team.issue()
    body = {"seconds_spent": 5400, "description": "debugging",
            "logged_at": "2024-05-01T10:00:00+02:00"}  # fmt: skip
    response = await log(team, number, body)
    assert response.status == 201, await response.text()
    entry = await response.json()
    assert entry["seconds_spent"] == 5400 and entry["user_id"] == team.developer["id"]
    assert entry["logged_at"] == "2024-05-01T08:00:00.000Z"

    (stored,) = await team.rows("SELECT * FROM time_entries")
    assert stored == {**entry}
    issue = await team.issue_row(number)
    assert issue["time_spent"] == 5400 and stored["issue_id"] == issue["id"]
    (change,) = await team.changes("time_entry")
    assert (change["op"], change["entity_id"], change["actor"]) == (
        "create", entry["id"], team.developer["id"],
    )  # fmt: skip
    assert change["new"] == stored and change["meta"] == {"issue": issue["id"]}


async def test_logged_at_defaults_to_now(team: Team) -> None:
    number = await team.issue()
    entry = await (await log(team, number, {"seconds_spent": 60})).json()
    assert entry["logged_at"] == entry["created_at"] and entry["description"] == ""


async def test_list_has_totals_overall_and_per_user(team: Team) -> None:
    number = await team.issue()
    for hour, who, seconds in ((9, "developer", 600), (10, "owner", 300), (11, "developer", 900)):
        body = {"seconds_spent": seconds, "logged_at": f"2024-05-02T{hour:02d}:00:00Z"}
        assert (await log(team, number, body, who)).status == 201
    response = await team.client.get(
        team.url(f"/issues/{number}/time-entries?limit=2"), headers=team.viewer["headers"]
    )
    assert response.status == 200
    page = await response.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    assert page["total_seconds"] == 1800
    assert page["by_user"] == {team.developer["id"]: 1500, team.owner["id"]: 300}
    rest = await team.client.get(
        team.url(f"/issues/{number}/time-entries?limit=2&cursor={page['next_cursor']}"),
        headers=team.viewer["headers"],
    )
    rest_page = await rest.json()
    assert [e["seconds_spent"] for e in page["items"] + rest_page["items"]] == [600, 300, 900]
    assert rest_page["next_cursor"] is None
    assert (await team.issue_row(number))["time_spent"] == 1800


async def test_delete_own_entry_or_as_admin_only(team: Team, api: Any) -> None:
    number = await team.issue()
    mine = await (await log(team, number, {"seconds_spent": 100})).json()
    theirs = await (await log(team, number, {"seconds_spent": 40}, "owner")).json()
    url = team.url(f"/issues/{number}/time-entries/")

    assert (
        await team.client.delete(url + theirs["id"], headers=team.developer["headers"])
    ).status == 403
    assert (
        await team.client.delete(url + mine["id"], headers=team.reporter["headers"])
    ).status == 403
    assert (
        await team.client.delete(url + mine["id"], headers=team.developer["headers"])
    ).status == 204
    assert (await team.issue_row(number))["time_spent"] == 40
    assert (
        await team.client.delete(url + theirs["id"], headers=team.owner["headers"])
    ).status == 204
    assert (
        await team.client.delete(url + theirs["id"], headers=team.owner["headers"])
    ).status == 404

    assert await team.rows("SELECT * FROM time_entries") == []
    assert (await team.issue_row(number))["time_spent"] == 0
    deletes = [c for c in await team.changes("time_entry") if c["op"] == "delete"]
    assert [(c["entity_id"], c["old"]["seconds_spent"]) for c in deletes] == [
        (mine["id"], 100), (theirs["id"], 40),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        {"seconds_spent": 0},
        {"seconds_spent": -60},
        {"seconds_spent": 1_000_001},
        {"seconds_spent": 1.5},
        {"seconds_spent": "60"},
        {"seconds_spent": True},
        {},
        {"seconds_spent": 60, "logged_at": "yesterday"},
        {"seconds_spent": 60, "logged_at": "2999-01-01T00:00:00Z"},
        {"seconds_spent": 60, "logged_at": "1969-12-31T23:59:59Z"},
        {"seconds_spent": 60, "description": "x" * 2001},
        {"seconds_spent": 60, "user_id": "someone-else"},
    ],
)
async def test_bad_time_entries_are_422_and_store_nothing(team: Team, body: dict[str, Any]) -> None:
    number = await team.issue()
    response = await log(team, number, body)
    assert response.status == 422, await response.text()
    assert await team.rows("SELECT * FROM time_entries") == []
    assert (await team.issue_row(number))["time_spent"] == 0
    assert await team.changes("time_entry") == []


async def test_roles_and_unknown_issues(team: Team, api: Any) -> None:
    number = await team.issue()
    for who, status in (("reporter", 403), ("viewer", 403), ("outsider", 404)):
        assert (await log(team, number, {"seconds_spent": 60}, who)).status == status, who
    assert (await log(team, 404, {"seconds_spent": 60})).status == 404
    other = await team.issue("other")
    entry = await (await log(team, number, {"seconds_spent": 60})).json()
    wrong = await team.client.delete(
        team.url(f"/issues/{other}/time-entries/{entry['id']}"), headers=team.owner["headers"]
    )
    assert wrong.status == 404
    assert len(await team.rows("SELECT * FROM time_entries")) == 1
    assert (await team.client.get(team.url("/issues/404/time-entries"),
                                  headers=team.owner["headers"])).status == 404  # fmt: skip
