"""Relations over HTTP: the inverse side, deleting both, refusals, cross-project links."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.test_http_comments import Team, make_issue, make_team


@pytest.fixture
async def team(api: Any, client: TestClient) -> Team:
    return await make_team(api, client)


async def relate(team: Team, number: int, body: dict[str, Any], who: str = "developer") -> Any:
    return await team.client.post(
        team.url(f"/issues/{number}/relations"), json=body,
        headers=getattr(team, who)["headers"],
    )  # fmt: skip


async def relations_of(team: Team, number: int, key: str = "WEB") -> list[dict[str, Any]]:
    response = await team.client.get(
        team.url(f"/issues/{number}/relations", project=key), headers=team.owner["headers"]
    )
    assert response.status == 200, await response.text()
    return (await response.json())["items"]


async def test_a_blocks_b_shows_b_is_blocked_by_a(team: Team) -> None:
    a, b = await team.issue("A"), await team.issue("B")
    response = await relate(team, a, {"type": "blocks", "issue": f"WEB-{b}"})
    assert response.status == 201, await response.text()
    created = await response.json()
    assert (created["type"], created["issue"], created["title"]) == ("blocks", f"WEB-{b}", "B")

    (mirror,) = await relations_of(team, b)
    assert (mirror["type"], mirror["issue"], mirror["title"]) == ("is_blocked_by", f"WEB-{a}", "A")
    assert mirror["pair_id"] == created["pair_id"]
    assert await relations_of(team, a) == [created]

    row_a, row_b = await team.issue_row(a), await team.issue_row(b)
    stored = await team.rows(
        "SELECT source_id, target_id, type, pair_id FROM relations ORDER BY type"
    )
    assert stored == [
        {"source_id": row_a["id"], "target_id": row_b["id"], "type": "blocks",
         "pair_id": created["pair_id"]},
        {"source_id": row_b["id"], "target_id": row_a["id"], "type": "is_blocked_by",
         "pair_id": created["pair_id"]},
    ]  # fmt: skip
    changes = await team.changes("relation")
    assert [(c["op"], c["meta"]["issue"], c["new"]["type"]) for c in changes] == [
        ("create", row_a["id"], "blocks"),
        ("create", row_b["id"], "is_blocked_by"),
    ]
    assert len({c["batch"] for c in changes}) == 1
    assert all(c["actor"] == team.developer["id"] for c in changes)


async def test_deleting_one_side_deletes_both(team: Team) -> None:
    a, b = await team.issue("A"), await team.issue("B")
    created = await (await relate(team, a, {"type": "duplicates", "issue": b})).json()
    (mirror,) = await relations_of(team, b)

    response = await team.client.delete(
        team.url(f"/issues/{b}/relations/{mirror['id']}"), headers=team.developer["headers"]
    )
    assert response.status == 204
    assert await team.rows("SELECT * FROM relations") == []
    assert await relations_of(team, a) == [] and await relations_of(team, b) == []
    deletes = [c for c in await team.changes("relation") if c["op"] == "delete"]
    assert sorted(c["entity_id"] for c in deletes) == sorted([created["id"], mirror["id"]])
    row_a, row_b = await team.issue_row(a), await team.issue_row(b)
    assert {c["meta"]["issue"] for c in deletes} == {row_a["id"], row_b["id"]}
    assert {c["old"]["type"] for c in deletes} == {"duplicates", "is_duplicated_by"}

    again = await team.client.delete(
        team.url(f"/issues/{b}/relations/{mirror['id']}"), headers=team.developer["headers"]
    )
    assert again.status == 404


async def test_relates_to_is_its_own_inverse_and_duplicates_are_409(team: Team) -> None:
    a, b = await team.issue("A"), await team.issue("B")
    assert (await relate(team, a, {"type": "relates_to", "issue": b})).status == 201
    (mirror,) = await relations_of(team, b)
    assert mirror["type"] == "relates_to"
    for number, body in (
        (a, {"type": "relates_to", "issue": b}),
        (b, {"type": "relates_to", "issue": f"web-{a}"}),  # the other side, key in lower case
        (b, {"type": "relates_to", "issue": str(a)}),  # a number as text
    ):
        response = await relate(team, number, body)
        assert response.status == 409, await response.text()
    blocked = await relate(team, b, {"type": "blocks", "issue": a})  # a new kind of link: fine
    assert blocked.status == 201
    assert len(await team.rows("SELECT * FROM relations")) == 4
    assert len(await team.changes("relation")) == 4


async def test_self_relation_is_422(team: Team) -> None:
    a = await team.issue()
    for ref in (a, f"WEB-{a}"):
        response = await relate(team, a, {"type": "blocks", "issue": ref})
        assert response.status == 422, await response.text()
        assert (await response.json())["errors"][0]["field"] == "issue"
    assert await team.rows("SELECT * FROM relations") == []


@pytest.mark.parametrize(
    "body",
    [
        {"type": "causes", "issue": 2},
        {"type": "blocks"},
        {"type": "blocks", "issue": 0},
        {"type": "blocks", "issue": -2},
        {"type": "blocks", "issue": True},
        {"type": "blocks", "issue": 2.0},
        {"type": "blocks", "issue": "WEB-"},
        {"type": "blocks", "issue": "WEB-2; DROP TABLE issues"},
        {"type": "blocks", "issue": 2, "extra": 1},
    ],
)
async def test_bad_relation_bodies_are_422(team: Team, body: dict[str, Any]) -> None:
    a = await team.issue()
    await team.issue()
    response = await relate(team, a, body)
    assert response.status == 422, await response.text()
    assert await team.rows("SELECT * FROM relations") == []


async def test_unknown_issues_are_404(team: Team) -> None:
    a = await team.issue()
    for number, ref in ((a, 77), (a, "WEB-77"), (a, "NOPE-1"), (77, a)):
        response = await relate(team, number, {"type": "blocks", "issue": ref})
        assert response.status == 404, (number, ref)
    assert await team.rows("SELECT * FROM relations") == []
    assert await team.changes("relation") == []


async def test_cross_project_link_needs_sight_of_the_other_project(team: Team, api: Any) -> None:
    a = await team.issue("A")
    public = await api.project(team.owner, team.org, key="API")
    secret = await api.project(team.owner, team.org, key="SEC", visibility="private")
    api_issue = await make_issue(team.client, team.org, public, team.owner, "in API")
    sec_issue = await make_issue(team.client, team.org, secret, team.owner, "in SEC")

    linked = await relate(team, a, {"type": "clones", "issue": f"API-{api_issue}"})
    assert linked.status == 201, await linked.text()
    (mirror,) = await relations_of(team, api_issue, key="API")
    assert (mirror["type"], mirror["issue"]) == ("is_cloned_by", f"WEB-{a}")
    api_change = [c for c in await team.changes("relation") if c["new"]["type"] == "is_cloned_by"]
    assert api_change[0]["project"] == public["id"]

    hidden = await relate(team, a, {"type": "blocks", "issue": f"SEC-{sec_issue}"})
    assert hidden.status == 404
    assert len(await team.rows("SELECT * FROM relations")) == 2

    # A link made by someone who sees both projects is not shown to someone who does not.
    by_owner = await relate(team, a, {"type": "blocks", "issue": f"SEC-{sec_issue}"}, "owner")
    assert by_owner.status == 201
    seen = await team.client.get(
        team.url(f"/issues/{a}/relations"), headers=team.developer["headers"]
    )
    assert [r["issue"] for r in (await seen.json())["items"]] == [f"API-{api_issue}"]
    assert len(await relations_of(team, a)) == 2


async def test_other_orgs_projects_are_not_reachable(team: Team, api: Any) -> None:
    a = await team.issue()
    other_org = await api.org(team.owner)
    await api.project(team.owner, other_org, key="EXT")
    response = await relate(team, a, {"type": "blocks", "issue": "EXT-1"}, "owner")
    assert response.status == 404


async def test_relation_ids_of_another_issue_are_404_and_roles_apply(team: Team) -> None:
    a, b, c = await team.issue("A"), await team.issue("B"), await team.issue("C")
    created = await (await relate(team, a, {"type": "blocks", "issue": b})).json()
    wrong = await team.client.delete(
        team.url(f"/issues/{c}/relations/{created['id']}"), headers=team.owner["headers"]
    )
    assert wrong.status == 404
    for who, status in (("reporter", 403), ("viewer", 403), ("outsider", 404)):
        response = await relate(team, a, {"type": "relates_to", "issue": c}, who)
        assert response.status == status, who
        removed = await team.client.delete(
            team.url(f"/issues/{a}/relations/{created['id']}"),
            headers=getattr(team, who)["headers"],
        )
        assert removed.status == status, who
    assert len(await team.rows("SELECT * FROM relations")) == 2


async def test_relations_page_through(team: Team, client: TestClient) -> None:
    a = await team.issue("A")
    others = [await team.issue(f"B{i}") for i in range(5)]
    for number in others:
        assert (await relate(team, a, {"type": "relates_to", "issue": number})).status == 201
    seen: list[str] = []
    cursor: str | None = ""
    while cursor is not None:
        suffix = f"&cursor={cursor}" if cursor else ""
        response = await client.get(
            team.url(f"/issues/{a}/relations?limit=2{suffix}"), headers=team.viewer["headers"]
        )
        page = await response.json()
        seen += [item["issue"] for item in page["items"]]
        cursor = page["next_cursor"]
    # same-millisecond links have no defined order between them; each shows up exactly once
    assert sorted(seen) == sorted(f"WEB-{n}" for n in others) and len(seen) == len(others)
