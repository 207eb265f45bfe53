"""Issues over HTTP: create, read, update (If-Match), delete/restore, parents, bad input."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Api
from tests.issues_world import World, join, make_world


@pytest.fixture
async def world(api: Api, client: Any) -> World:
    return await make_world(api, client)


async def test_create_stores_row_index_and_full_post_image(world: World) -> None:
    response = await world.client.post(
        world.url("/issues"),
        json={"title": "Login fails", "description": "with zanzibar", "type": "bug",
              "priority": "major", "due_date": "2030-01-31", "estimate": 90},
        headers=world.developer["headers"],
    )  # fmt: skip
    assert response.status == 201, await response.text()
    issue = await response.json()
    assert response.headers["ETag"] == '"1"'
    assert issue["key"] == "WEB-1" and issue["number"] == 1 and issue["version"] == 1
    assert (issue["status"], issue["type"], issue["priority"]) == ("Open", "bug", "major")
    assert issue["reporter"] == world.developer["id"]
    assert (issue["due_date"], issue["estimate"], issue["resolved_at"]) == ("2030-01-31", 90, None)

    (row,) = await world.rows("SELECT * FROM issues")
    assert (row["id"], row["title"], row["number"], row["deleted_at"]) == (
        issue["id"], "Login fails", 1, None,
    )  # fmt: skip
    stage = await world.rows("SELECT name, category FROM stages WHERE id = ?", row["stage_id"])
    assert stage == [{"name": "Open", "category": "todo"}]
    hits = await world.rows("SELECT rowid FROM issue_search WHERE issue_search MATCH 'zanzibar'")
    assert hits == [{"rowid": row["row_id"]}]
    (change,) = await world.changes("issue")
    assert (change["op"], change["actor"], change["origin"]) == (
        "create", world.developer["id"], "api",
    )  # fmt: skip
    assert change["new"] == issue and change["version"] == 1
    assert change["meta"] == {"issue": issue["id"]}


async def test_issue_visible_through_get_and_org_wide_key(world: World) -> None:
    created = await world.create(title="Findable")
    status, issue = await world.call("GET", world.url("/issues/1"), world.viewer)
    assert status == 200 and issue == created
    for key in ("WEB-1", "web-1"):
        status, issue = await world.call("GET", f"/api/v1/orgs/{world.org['slug']}/issues/{key}")
        assert status == 200 and issue["id"] == created["id"]
    for key in ("WEB-2", "NOPE-1", "WEB", "1", "WEB-0", "-1", "WEB-1x"):
        status, body = await world.call("GET", f"/api/v1/orgs/{world.org['slug']}/issues/{key}")
        assert status == 404, (key, body)
    status, _ = await world.call(
        "GET", f"/api/v1/orgs/{world.org['slug']}/issues/WEB-1", world.outsider
    )
    assert status == 404


async def test_org_wide_key_hides_private_projects(world: World) -> None:
    await world.api.project(world.owner, world.org, key="SEC", visibility="private")
    await world.create(title="secret")
    response = await world.client.post(
        world.url("/issues", "SEC"), json={"title": "hidden"}, headers=world.owner["headers"]
    )
    assert response.status == 201
    base = f"/api/v1/orgs/{world.org['slug']}/issues"
    status, body = await world.call("GET", f"{base}/SEC-1", world.reporter)
    assert status == 404 and body["detail"] == "issue not found"
    assert (await world.call("GET", f"{base}/SEC-1", world.owner))[0] == 200
    assert (await world.call("GET", f"{base}/WEB-1", world.reporter))[0] == 200


async def test_200_concurrent_creates_number_one_to_two_hundred(world: World) -> None:
    async def create(n: int) -> int:
        response = await world.client.post(
            world.url("/issues"), json={"title": f"issue {n}"}, headers=world.owner["headers"]
        )
        assert response.status == 201, await response.text()
        return int((await response.json())["number"])

    numbers = await asyncio.gather(*(create(n) for n in range(200)))
    assert sorted(numbers) == list(range(1, 201))
    rows = await world.rows("SELECT number FROM issues ORDER BY number")
    assert [r["number"] for r in rows] == list(range(1, 201))
    assert await world.count("issue_search") == 200
    project = await world.rows("SELECT next_number FROM projects WHERE key = 'WEB'")
    assert project == [{"next_number": 201}]


async def test_concurrent_creates_with_refusals_store_exactly_the_valid_ones(
    world: World,
) -> None:
    """Concurrent creates share group commits; a refused one (422 inside the writer) must
    neither take a number nor make the others run twice or vanish."""

    async def create(n: int) -> int:
        body = {"title": f"issue {n}"} | ({"status": "Nope"} if n % 5 == 0 else {})
        response = await world.client.post(
            world.url("/issues"), json=body, headers=world.owner["headers"]
        )
        return response.status

    statuses = await asyncio.gather(*(create(n) for n in range(100)))
    assert statuses.count(201) == 80 and statuses.count(422) == 20
    rows = await world.rows("SELECT number, title FROM issues ORDER BY number")
    assert [r["number"] for r in rows] == list(range(1, 81))
    assert sorted(r["title"] for r in rows) == sorted(f"issue {n}" for n in range(100) if n % 5)
    creates = await world.rows(
        "SELECT count(*) AS n FROM changes WHERE entity = 'issue' AND op = 'create'"
    )
    assert creates == [{"n": 80}]
    assert await world.count("issue_search") == 80


async def test_numbers_are_never_reused_after_delete(world: World) -> None:
    await world.create()
    await world.create()
    assert (await world.call("DELETE", world.url("/issues/2")))[0] == 204
    assert (await world.create())["number"] == 3


async def test_patch_changes_only_named_fields_with_history(world: World) -> None:
    issue = await world.create(title="Old", description="same", priority="minor")
    status, body = await world.call(
        "PATCH", world.url("/issues/1"), world.developer,
        json={"title": "New", "priority": "critical", "description": "same"},
    )  # fmt: skip
    assert status == 200, body
    assert (body["title"], body["priority"], body["description"]) == ("New", "critical", "same")
    assert body["version"] == 2 and body["updated_at"] >= issue["updated_at"]
    updates = [c for c in await world.changes("issue") if c["op"] == "update"]
    assert {(c["field"], c["old"], c["new"], c["version"], c["actor"]) for c in updates} == {
        ("title", "Old", "New", 2, world.developer["id"]),
        ("priority", "minor", "critical", 2, world.developer["id"]),
    }
    assert len({c["batch"] for c in updates}) == 1


async def test_patch_without_if_match_never_clobbers_other_fields(world: World) -> None:
    await world.create(title="T", priority="normal")
    results = await asyncio.gather(
        world.call("PATCH", world.url("/issues/1"), json={"title": "from A"}),
        world.call("PATCH", world.url("/issues/1"), json={"priority": "major"}),
    )
    assert [status for status, _ in results] == [200, 200]
    (row,) = await world.rows("SELECT title, priority, version FROM issues")
    assert row == {"title": "from A", "priority": "major", "version": 3}


async def test_two_patches_with_same_if_match_one_wins(world: World) -> None:
    await world.create(title="Start")
    headers = {"If-Match": '"1"'}
    results = await asyncio.gather(
        world.call("PATCH", world.url("/issues/1"), json={"title": "A"}, headers=headers),
        world.call("PATCH", world.url("/issues/1"), json={"title": "B"}, headers=headers),
    )
    assert sorted(status for status, _ in results) == [200, 412]
    winner = next(body for status, body in results if status == 200)
    loser = next(body for status, body in results if status == 412)
    assert loser["status"] == 412 and "version 2" in loser["detail"]
    (row,) = await world.rows("SELECT title, version FROM issues")
    assert row == {"title": winner["title"], "version": 2}
    _, history = await world.call("GET", world.url("/issues/1/history"))
    updates = [h for h in history["items"] if h["op"] == "update"]
    assert [(h["field"], h["old"], h["new"]) for h in updates] == [
        ("title", "Start", winner["title"])
    ]


IF_MATCH = [('"1"', 200), ("1", 200), ('W/"1"', 200), ('"7", "1"', 200), ("*", 200),
            ('"2"', 412), ("garbage", 412), ('""', 412)]  # fmt: skip


async def test_if_match_forms(world: World) -> None:
    for number, (if_match, status) in enumerate(IF_MATCH, start=1):
        await world.create(title="x")
        got, _ = await world.call(
            "PATCH", world.url(f"/issues/{number}"), json={"title": "y"},
            headers={"If-Match": if_match},
        )  # fmt: skip
        assert got == status, if_match
        (row,) = await world.rows("SELECT title FROM issues WHERE number = ?", number)
        assert row["title"] == ("y" if status == 200 else "x"), if_match


async def test_etag_follows_version_on_get_and_patch(world: World) -> None:
    await world.create()
    response = await world.client.patch(
        world.url("/issues/1"), json={"estimate": 5}, headers=world.owner["headers"]
    )
    assert response.headers["ETag"] == '"2"'
    response = await world.client.get(world.url("/issues/1"), headers=world.owner["headers"])
    assert response.headers["ETag"] == '"2"'


async def test_noop_patch_keeps_version_and_logs_nothing(world: World) -> None:
    await world.create(title="Same")
    before = len(await world.changes())
    status, body = await world.call("PATCH", world.url("/issues/1"), json={"title": "Same"})
    assert status == 200 and body["version"] == 1
    assert len(await world.changes()) == before


async def test_reporter_edits_own_title_and_description_only(world: World) -> None:
    await world.create(world.reporter, title="Mine")
    await world.create(world.developer, title="Theirs")
    ok = await world.call(
        "PATCH", world.url("/issues/1"), world.reporter,
        json={"title": "Mine, edited", "description": "more"},
    )  # fmt: skip
    assert ok[0] == 200 and ok[1]["title"] == "Mine, edited"
    for number, body in ((1, {"priority": "major"}), (2, {"title": "hijack"}),
                         (1, {"title": "x", "status": "Closed"})):  # fmt: skip
        status, problem = await world.call(
            "PATCH", world.url(f"/issues/{number}"), world.reporter, json=body
        )
        assert status == 403, (number, body, problem)
    rows = await world.rows("SELECT number, title, priority FROM issues ORDER BY number")
    assert rows == [
        {"number": 1, "title": "Mine, edited", "priority": "normal"},
        {"number": 2, "title": "Theirs", "priority": "normal"},
    ]
    viewer = await world.call("POST", world.url("/issues"), world.viewer, json={"title": "no"})
    assert viewer[0] == 403


async def test_status_change_moves_to_column_end_and_tracks_resolution(world: World) -> None:
    await world.create(title="a", status="Resolved")
    await world.create(title="b")
    first = (await world.rows("SELECT rank, resolved_at FROM issues WHERE number = 1"))[0]
    assert first["resolved_at"] is not None
    status, body = await world.call("PATCH", world.url("/issues/2"), json={"status": "resolved"})
    assert status == 200 and body["status"] == "Resolved" and body["resolved_at"] is not None
    (second,) = await world.rows("SELECT rank FROM issues WHERE number = 2")
    assert second["rank"] > first["rank"]
    status, body = await world.call("PATCH", world.url("/issues/2"), json={"status": "In Progress"})
    assert body["resolved_at"] is None
    fields = [(c["field"], c["new"]) for c in await world.changes("issue") if c["field"]]
    assert fields[-2:] == [("status", "In Progress"), ("resolved_at", None)]


async def test_title_change_reindexes_search(world: World) -> None:
    await world.create(title="alphaword")
    await world.call("PATCH", world.url("/issues/1"), json={"title": "betaword"})
    search = "SELECT rowid FROM issue_search WHERE issue_search MATCH ?"
    assert await world.rows(search, "alphaword") == []
    assert len(await world.rows(search, "betaword")) == 1


async def test_soft_delete_and_restore(world: World) -> None:
    issue = await world.create(title="Doomed")
    await world.create(title="Stays")
    assert (await world.call("DELETE", world.url("/issues/1"), world.developer))[0] == 403
    assert (await world.call("DELETE", world.url("/issues/1")))[0] == 204
    for who in (world.owner, world.developer):
        assert (await world.call("GET", world.url("/issues/1"), who))[0] == 404
        status, page = await world.call("GET", world.url("/issues"), who)
        assert [i["number"] for i in page["items"]] == [2]
    assert (await world.call("PATCH", world.url("/issues/1"), json={"title": "x"}))[0] == 404
    assert (await world.call("DELETE", world.url("/issues/1")))[0] == 404
    (row,) = await world.rows("SELECT deleted_at, version FROM issues WHERE number = 1")
    assert row["deleted_at"] is not None and row["version"] == 2

    assert (await world.call("POST", world.url("/issues/1/restore"), world.developer))[0] == 403
    status, restored = await world.call("POST", world.url("/issues/1/restore"))
    assert status == 200 and restored["number"] == 1 and restored["id"] == issue["id"]
    assert restored["version"] == 3
    assert (await world.call("GET", world.url("/issues/1"), world.viewer))[0] == 200
    assert (await world.call("POST", world.url("/issues/1/restore")))[0] == 409
    assert (await world.call("POST", world.url("/issues/9/restore")))[0] == 404
    ops = [
        (c["op"], c["actor"]) for c in await world.changes("issue") if c["entity_id"] == issue["id"]
    ]
    assert ops == [("create", world.owner["id"]), ("delete", world.owner["id"]),
                   ("restore", world.owner["id"])]  # fmt: skip
    restore = (await world.changes("issue"))[-1]
    assert restore["new"] == restored


async def test_delete_honours_if_match(world: World) -> None:
    await world.create()
    status, _ = await world.call("DELETE", world.url("/issues/1"), headers={"If-Match": '"5"'})
    assert status == 412
    assert (await world.rows("SELECT deleted_at FROM issues")) == [{"deleted_at": None}]


async def test_parent_links_and_refuses_cycles(world: World) -> None:
    await world.create(title="A")
    status, body = await world.call(
        "POST", world.url("/issues"), json={"title": "B", "parent": "WEB-1"}
    )
    assert status == 201 and body["parent"] == "WEB-1"
    await world.create(title="C", parent=2)
    for number, parent in ((1, "WEB-2"), (1, 3), (1, "web-1"), (2, 3)):
        status, problem = await world.call(
            "PATCH", world.url(f"/issues/{number}"), json={"parent": parent}
        )
        assert status == 409, (number, parent, problem)
    rows = await world.rows("SELECT number, parent_id IS NULL AS root FROM issues ORDER BY number")
    assert [r["root"] for r in rows] == [1, 0, 0]
    status, body = await world.call("PATCH", world.url("/issues/3"), json={"parent": None})
    assert status == 200 and body["parent"] is None
    change = (await world.changes("issue"))[-1]
    assert (change["field"], change["old"], change["new"]) == ("parent", "WEB-2", None)


async def test_parent_must_be_in_the_same_project(world: World) -> None:
    await world.api.project(world.owner, world.org, key="API")
    other = await world.client.post(
        world.url("/issues", "API"), json={"title": "elsewhere"}, headers=world.owner["headers"]
    )
    assert other.status == 201
    await world.create(title="here")
    for parent in ("API-1", "WEB-9", 9, "garbage", 0, -1, True, 1.5):
        status, problem = await world.call("PATCH", world.url("/issues/1"), json={"parent": parent})
        assert status == 422, (parent, problem)
    status, _ = await world.call(
        "POST", world.url("/issues"), json={"title": "x", "parent": "API-1"}
    )
    assert status == 422
    assert await world.count("issues") == 2


async def test_assignees_must_see_the_project(world: World) -> None:
    await world.api.project(world.owner, world.org, key="SEC", visibility="private")
    insider = await world.api.user()
    await join(world, world.owner, world.org, insider, "SEC", "developer")
    response = await world.client.post(
        world.url("/issues", "SEC"), json={"title": "s"}, headers=world.owner["headers"]
    )
    assert response.status == 201
    put = world.url("/issues/1/assignees", "SEC")
    for user in (world.reporter, world.outsider, {"id": "not-a-user"}):
        status, problem = await world.call("PUT", put, json={"user_ids": [user["id"]]})
        assert status == 422 and problem["errors"][0]["field"] == "assignees", problem
    ok = [insider["id"], world.owner["id"]]
    status, issue = await world.call("PUT", put, json={"user_ids": ok})
    assert status == 200 and issue["assignees"] == sorted(ok) and issue["version"] == 2
    status, page = await world.call("GET", put, world.reporter)
    assert status == 404  # the reporter cannot see SEC at all
    status, page = await world.call("GET", put, insider)
    assert {a["email"] for a in page["items"]} == {insider["email"], world.owner["email"]}
    links = await world.changes("issue_assignee")
    assert {(c["op"], c["new"]["user_id"], c["version"]) for c in links} == {
        ("create", insider["id"], 2), ("create", world.owner["id"], 2),
    }  # fmt: skip
    status, issue = await world.call("PUT", put, json={"user_ids": [insider["id"]]})
    assert issue["assignees"] == [insider["id"]]
    removed = (await world.changes("issue_assignee"))[-1]
    assert (removed["op"], removed["old"]["user_id"]) == ("delete", world.owner["id"])
    assert (await world.call("PUT", put, world.viewer, json={"user_ids": []}))[0] == 404


async def test_reporters_cannot_set_assignees(world: World) -> None:
    await world.create()
    url = world.url("/issues/1/assignees")
    status, _ = await world.call("PUT", url, world.reporter, json={"user_ids": []})
    assert status == 403


LONG = "x" * 600
BAD_CREATES: list[tuple[dict[str, Any], str]] = [
    ({"title": LONG}, "title"),
    ({"title": "   "}, "title"),
    ({"title": ""}, "title"),
    ({}, "title"),
    ({"title": 5}, "title"),
    ({"title": "ok", "description": "d" * 200_000}, "description"),
    ({"title": "ok", "description": "é" * 60_000}, "description"),
    ({"title": "ok", "type": "saga"}, "type"),
    ({"title": "ok", "priority": "urgent"}, "priority"),
    ({"title": "ok", "status": "Nowhere"}, "status"),
    ({"title": "ok", "sprint_id": "nope"}, "sprint_id"),
    ({"title": "ok", "due_date": "31/01/2030"}, "due_date"),
    ({"title": "ok", "due_date": "2030-02-30"}, "due_date"),
    ({"title": "ok", "estimate": -1}, "estimate"),
    ({"title": "ok", "estimate": "10"}, "estimate"),
    ({"title": "ok", "assignees": ["ghost"]}, "assignees"),
    ({"title": "ok", "assignees": "ghost"}, "assignees"),
    ({"title": "ok", "tags": ["a,b"]}, "tags.0"),
    ({"title": "ok", "tags": ["x", "X"]}, "tags"),
    ({"title": "ok", "custom_fields": {"nope": 1}}, "custom_fields.nope"),
    ({"title": "ok", "number": 7}, "number"),
    ({"title": "ok", "reporter": "someone"}, "reporter"),
]


async def test_bad_creates_are_422_and_store_nothing(world: World) -> None:
    before = await world.count("changes")
    for body, field in BAD_CREATES:
        status, problem = await world.call("POST", world.url("/issues"), json=body)
        assert status == 422, (body, problem)
        assert field in [e["field"] for e in problem["errors"]], problem
    assert await world.count("issues") == 0 and await world.count("tags") == 0
    assert await world.count("changes") == before
    assert (await world.rows("SELECT next_number FROM projects"))[0]["next_number"] == 1


BAD_PATCHES: list[tuple[dict[str, Any], int]] = [
    ({"title": None}, 422), ({"title": LONG}, 422), ({"status": None}, 422),
    ({"description": "d" * 200_000}, 422), ({"estimate": 0.5}, 422), ({"tags": None}, 422),
    ({"version": 3}, 422), ({"assignees": ["ghost"]}, 422), ({"custom_fields": None}, 422),
]  # fmt: skip


async def test_bad_patches_change_nothing(world: World) -> None:
    await world.create(title="stable")
    before = await world.count("changes")
    for body, status in BAD_PATCHES:
        got, problem = await world.call("PATCH", world.url("/issues/1"), json=body)
        assert got == status, (body, problem)
    (row,) = await world.rows("SELECT title, version FROM issues")
    assert row == {"title": "stable", "version": 1}
    assert await world.count("changes") == before


async def test_unknown_issue_numbers_are_404_everywhere(world: World) -> None:
    await world.create()
    for number in ("2", "0", "-1", "abc", "1e3", "99999999999", "%20"):
        for method, suffix, body in (
            ("GET", "", None), ("PATCH", "", {"title": "x"}), ("DELETE", "", None),
            ("POST", "/restore", None), ("GET", "/history", None), ("GET", "/assignees", None),
            ("PUT", "/assignees", {"user_ids": []}), ("PUT", "/tags", {"tags": []}),
        ):  # fmt: skip
            url = world.url(f"/issues/{number}{suffix}")
            status, _ = await world.call(method, url, json=body)
            assert status == 404, (method, suffix, number)
    assert (await world.rows("SELECT version FROM issues")) == [{"version": 1}]


async def test_malformed_json_and_wrong_media_type(world: World) -> None:
    response = await world.client.post(
        world.url("/issues"), data=b"{not json", headers={**world.owner["headers"],
                                                          "Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status == 400
    response = await world.client.post(
        world.url("/issues"), data=b"title=x",
        headers={**world.owner["headers"], "Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert response.status == 415
    assert await world.count("issues") == 0


async def test_outsiders_and_anonymous_see_nothing(world: World) -> None:
    await world.create()
    assert (await world.call("GET", world.url("/issues/1"), world.outsider))[0] == 404
    assert (await world.call("GET", world.url("/issues"), world.outsider))[0] == 404
    response = await world.client.get(world.url("/issues/1"))
    assert response.status == 401


# --- listing ------------------------------------------------------------------------------


async def walk(world: World, query: str, limit: int, during: Any = None) -> list[dict[str, Any]]:
    """Every page of a listing; `during` (a coroutine function) runs between pages."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = world.url(f"/issues?limit={limit}{query}") + (f"&cursor={cursor}" if cursor else "")
        status, page = await world.call("GET", url)
        assert status == 200, page
        seen += page["items"]
        if during is not None:
            await during()
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_list_filters(world: World) -> None:
    dev, rep = world.developer["id"], world.reporter["id"]
    await world.create(title="a", type="bug", priority="critical", tags=["ui"], assignees=[dev])
    await world.create(title="b", type="feature", status="In Progress", tags=["ui", "api"])
    await world.create(title="c", type="bug", priority="minor", assignees=[dev, rep])
    await world.create(title="d", status="Closed")

    async def numbers(query: str, who: dict[str, Any] | None = None) -> list[int]:
        status, page = await world.call("GET", world.url(f"/issues?{query}"), who)
        assert status == 200, page
        return [i["number"] for i in page["items"]]

    assert await numbers("") == [4, 3, 2, 1]
    assert await numbers("status=Open") == [3, 1]
    assert await numbers("status=open,closed") == [4, 3, 1]
    assert await numbers("status=Nowhere") == []
    assert await numbers("type=bug") == [3, 1]
    assert await numbers("priority=critical,minor") == [3, 1]
    assert await numbers("tag=UI") == [2, 1]
    assert await numbers("tag=api,nope") == [2]
    assert await numbers(f"assignee={rep}") == [3]
    assert await numbers("assignee=me", world.developer) == [3, 1]
    assert await numbers("assignee=none") == [4, 2]
    assert await numbers("sprint=none") == [4, 3, 2, 1]
    assert await numbers("type=bug&assignee=none") == []
    assert await numbers("sort=number-asc") == [1, 2, 3, 4]
    assert await numbers("sort=priority-desc") == [1, 4, 2, 3]
    assert await numbers("sort=priority-asc") == [3, 2, 4, 1]
    assert await numbers("sort=created-asc") == [1, 2, 3, 4]
    await world.call("PATCH", world.url("/issues/2"), json={"title": "bumped"})
    assert (await numbers("sort=updated-desc"))[0] == 2


@pytest.mark.parametrize(
    "sort",
    ["number-desc", "number-asc", "created-desc", "created-asc", "updated-desc",
     "priority-desc", "priority-asc"],
)  # fmt: skip
async def test_walking_pages_while_creating_sees_each_issue_once(world: World, sort: str) -> None:
    priorities = ["critical", "major", "normal", "minor"]
    for n in range(60):
        await world.create(title=f"pre {n}", priority=priorities[n % 4])
    created = 0

    async def create_some() -> None:
        nonlocal created
        if created >= 50:
            return
        batch = await asyncio.gather(
            *(world.create(title=f"new {created + k}", priority=priorities[k % 4])
              for k in range(5))
        )  # fmt: skip
        created += len(batch)

    seen = await walk(world, f"&sort={sort}", limit=5, during=create_some)
    numbers = [i["number"] for i in seen]
    assert len(numbers) == len(set(numbers)), "no issue twice"
    assert set(range(1, 61)) <= set(numbers), "every pre-existing issue"
    assert created == 50


async def test_list_bad_queries(world: World) -> None:
    await world.create()
    await world.create()
    _, page = await world.call("GET", world.url("/issues?limit=1"))
    cursor = page["next_cursor"]
    cases = [
        ("limit=0", 422), ("limit=201", 422), ("limit=x", 422), ("sort=title", 422),
        ("priority=urgent", 422), ("type=saga,bug", 422), ("cursor=%%%", 400),
        ("cursor=bm90IGpzb24", 400), ("cursor=WzFd", 400), (f"cursor={cursor}x", 400),
        (f"sort=created-desc&cursor={cursor}", 400), (f"cursor={cursor}", 200),
    ]  # fmt: skip
    for query, status in cases:
        got, body = await world.call("GET", world.url(f"/issues?{query}"))
        assert got == status, (query, body)


async def test_q_goes_to_the_query_language(world: World) -> None:
    await world.create(title="zebra crossing", priority="major")
    await world.create(title="lion")
    status, page = await world.call("GET", world.url("/issues?q=zebra"))
    assert status == 200 and [i["key"] for i in page["items"]] == ["WEB-1"]
    status, problem = await world.call("GET", world.url("/issues?q=zebra&status=Open"))
    assert status == 422 and problem["errors"][0]["field"] == "query.status"
