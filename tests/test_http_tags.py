"""Tags: the project catalogue, tags on an issue, and who may create them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.issues_world import World, make_world


@pytest.fixture
async def world(api: Api, client: Any) -> World:
    return await make_world(api, client)


async def test_catalogue_create_list_and_duplicates(world: World) -> None:
    status, tag = await world.call(
        "POST", world.url("/tags"), world.developer, json={"name": "Frontend", "color": "#00ff00"}
    )
    assert status == 201 and tag["name"] == "Frontend" and tag["color"] == "#00ff00"
    assert (await world.call("POST", world.url("/tags"), json={"name": "frontend"}))[0] == 409
    for name in ("b", "A", "c"):
        assert (await world.call("POST", world.url("/tags"), json={"name": name}))[0] == 201
    names: list[str] = []
    cursor = ""
    while True:
        status, page = await world.call("GET", world.url(f"/tags?limit=2{cursor}"), world.viewer)
        assert status == 200
        names += [t["name"] for t in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert names == ["A", "b", "c", "Frontend"]
    stored = await world.rows("SELECT name FROM tags ORDER BY name")
    assert [r["name"] for r in stored] == ["A", "Frontend", "b", "c"]
    (change,) = [c for c in await world.changes("tag") if c["new"]["name"] == "Frontend"]
    assert change["op"] == "create" and change["actor"] == world.developer["id"]


async def test_catalogue_bad_input_and_roles(world: World) -> None:
    for body in ({"name": ""}, {"name": "a,b"}, {"name": " lead"}, {"name": "x" * 51},
                 {"name": "ok", "color": "green"}, {"name": 5}, {}):  # fmt: skip
        status, problem = await world.call("POST", world.url("/tags"), json=body)
        assert status == 422, (body, problem)
    assert (await world.call("POST", world.url("/tags"), world.reporter, json={"name": "r"}))[
        0
    ] == 403
    assert (await world.call("GET", world.url("/tags"), world.outsider))[0] == 404
    assert await world.count("tags") == 0


async def test_put_issue_tags_creates_unknown_names_for_developers(world: World) -> None:
    await world.create()
    await world.call("POST", world.url("/tags"), json={"name": "UI"})
    status, issue = await world.call(
        "PUT", world.url("/issues/1/tags"), world.developer, json={"tags": ["ui", "backend"]}
    )
    assert status == 200, issue
    assert issue["tags"] == ["backend", "UI"] and issue["version"] == 2
    assert {r["name"] for r in await world.rows("SELECT name FROM tags")} == {"UI", "backend"}
    links = await world.changes("issue_tag")
    assert {(c["op"], c["new"]["name"], c["version"]) for c in links} == {
        ("create", "UI", 2), ("create", "backend", 2),
    }  # fmt: skip
    status, issue = await world.call("PUT", world.url("/issues/1/tags"), json={"tags": ["UI"]})
    assert issue["tags"] == ["UI"] and issue["version"] == 3
    last = (await world.changes("issue_tag"))[-1]
    assert (last["op"], last["old"]["name"]) == ("delete", "backend")
    # the same set again changes nothing
    status, issue = await world.call("PUT", world.url("/issues/1/tags"), json={"tags": ["ui"]})
    assert status == 200 and issue["version"] == 3


async def test_put_issue_tags_refusals_store_nothing(world: World) -> None:
    await world.create()
    before = await world.count("changes")
    cases: list[tuple[dict[str, Any], dict[str, Any], int]] = [
        (world.reporter, {"tags": ["x"]}, 403),
        (world.viewer, {"tags": ["x"]}, 403),
        (world.owner, {"tags": ["a,b"]}, 422),
        (world.owner, {"tags": ["x", "X"]}, 422),
        (world.owner, {"tags": "x"}, 422),
        (world.owner, {"tags": ["x"] * 51}, 422),
        (world.owner, {}, 422),
    ]
    for who, body, status in cases:
        got, problem = await world.call("PUT", world.url("/issues/1/tags"), who, json=body)
        assert got == status, (body, problem)
    got, _ = await world.call(
        "PUT", world.url("/issues/1/tags"), json={"tags": ["x"]}, headers={"If-Match": '"9"'}
    )
    assert got == 412
    assert await world.count("tags") == 0 and await world.count("changes") == before


async def test_reporters_cannot_tag_through_new_issues(world: World) -> None:
    """A reporter's update cannot tag, so neither can their create (issue 12 item 11)."""
    await world.call("POST", world.url("/tags"), json={"name": "known"})
    before = await world.count("changes")
    for tags in (["unknown"], ["KNOWN"]):
        status, problem = await world.call(
            "POST", world.url("/issues"), world.reporter, json={"title": "t", "tags": tags}
        )
        assert status == 403 and "tags" in problem["detail"]
    assert await world.count("issues") == 0 and await world.count("changes") == before
    status, problem = await world.call(
        "POST", world.url("/issues"), world.developer, json={"title": "t", "tags": ["unknown"]}
    )
    assert status == 201  # developers create tags (SPEC §3)
    issue = await world.create(world.developer, title="t", tags=["KNOWN"])
    assert issue["tags"] == ["known"]


async def test_deleting_a_tag_removes_it_from_issues_with_history(world: World) -> None:
    await world.create(tags=["gone", "kept"])
    await world.create(tags=["kept"])
    (tag,) = await world.rows("SELECT id FROM tags WHERE name = 'gone'")
    url = world.url(f"/tags/{tag['id']}")
    assert (await world.call("DELETE", url, world.developer))[0] == 403
    assert (await world.call("DELETE", url))[0] == 204
    assert (await world.call("DELETE", url))[0] == 404
    assert (await world.call("DELETE", world.url("/tags/nope")))[0] == 404
    _, issue = await world.call("GET", world.url("/issues/1"))
    assert issue["tags"] == ["kept"] and issue["version"] == 2
    _, history = await world.call("GET", world.url("/issues/1/history"))
    newest = history["items"][0]
    assert (newest["entity"], newest["op"], newest["old"]["name"]) == (
        "issue_tag",
        "delete",
        "gone",
    )
    assert (await world.changes("tag"))[-1]["op"] == "delete"


async def test_tag_ids_from_another_project_are_404(world: World) -> None:
    await world.api.project(world.owner, world.org, key="API")
    status, tag = await world.call("POST", world.url("/tags", "API"), json={"name": "theirs"})
    assert status == 201
    assert (await world.call("DELETE", world.url(f"/tags/{tag['id']}")))[0] == 404
    assert await world.count("tags") == 1
