"""Custom fields: definitions per project, values validated against them, exact round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api
from tests.issues_world import World, make_world
from tracker.domain.permissions import Permission
from tracker.http.keys import CORE
from tracker.services import issues
from tracker.services.acting import act_as


@pytest.fixture
async def world(api: Api, client: Any) -> World:
    return await make_world(api, client)


async def define(world: World, **body: Any) -> dict[str, Any]:
    status, field = await world.call("POST", world.url("/fields"), json=body)
    assert status == 201, field
    return field  # type: ignore[no-any-return]


async def fields_world(world: World) -> dict[str, dict[str, Any]]:
    return {
        "severity": await define(world, name="Severity", type="enum", options=["low", "high"]),
        "platforms": await define(world, name="Platforms", type="multi_enum",
                                  options=["ios", "android", "web"]),
        "score": await define(world, name="Score", type="number"),
        "ship": await define(world, name="Ship date", type="date"),
        "notes": await define(world, name="Notes", type="text"),
        "owner": await define(world, name="Owner", type="user"),
    }  # fmt: skip


async def test_definitions_crud_with_changes(world: World) -> None:
    field = await define(world, name="Severity", type="enum", options=["low", "high"])
    assert (field["type"], field["options"], field["required"], field["position"]) == (
        "enum", ["low", "high"], False, 0,
    )  # fmt: skip
    second = await define(world, name="Score", type="number")
    assert second["position"] == 1
    status, page = await world.call("GET", world.url("/fields"), world.viewer)
    assert status == 200 and [f["name"] for f in page["items"]] == ["Severity", "Score"]
    status, patched = await world.call(
        "PATCH", world.url(f"/fields/{field['id']}"),
        json={"name": "Impact", "options": ["low", "high", "critical"]},
    )  # fmt: skip
    assert status == 200 and patched["name"] == "Impact" and len(patched["options"]) == 3
    assert (await world.call("DELETE", world.url(f"/fields/{second['id']}")))[0] == 204
    stored = await world.rows("SELECT name, type, options FROM custom_fields")
    assert stored == [
        {"name": "Impact", "type": "enum", "options": '["low","high","critical"]'}
    ] or (
        [dict(r, options=json.loads(r["options"])) for r in stored]
        == [{"name": "Impact", "type": "enum", "options": ["low", "high", "critical"]}]
    )
    ops = [(c["op"], c["field"]) for c in await world.changes("custom_field")]
    assert ops == [("create", None), ("create", None), ("update", "name"),
                   ("update", "options"), ("delete", None)]  # fmt: skip


async def test_definition_refusals(world: World) -> None:
    await define(world, name="Severity", type="enum", options=["low"])
    field_id = (await world.rows("SELECT id FROM custom_fields"))[0]["id"]
    cases: list[tuple[str, str, dict[str, Any], dict[str, Any], int]] = [
        ("POST", "/fields", world.owner, {"name": "severity", "type": "text"}, 409),
        ("POST", "/fields", world.owner, {"name": "E", "type": "enum"}, 422),
        ("POST", "/fields", world.owner, {"name": "E", "type": "enum", "options": ["a", "A"]}, 422),
        ("POST", "/fields", world.owner, {"name": "T", "type": "text", "options": ["a"]}, 422),
        ("POST", "/fields", world.owner, {"name": "T", "type": "color"}, 422),
        ("POST", "/fields", world.owner, {"name": "a:b", "type": "text"}, 422),
        ("POST", "/fields", world.owner, {"name": "", "type": "text"}, 422),
        ("POST", "/fields", world.developer, {"name": "D", "type": "text"}, 403),
        ("PATCH", f"/fields/{field_id}", world.owner, {"type": "text"}, 422),
        ("PATCH", f"/fields/{field_id}", world.owner, {"options": []}, 422),
        ("PATCH", f"/fields/{field_id}", world.owner, {"name": None}, 422),
        ("PATCH", "/fields/nope", world.owner, {"name": "x"}, 404),
        ("DELETE", "/fields/nope", world.owner, {}, 404),
        ("DELETE", f"/fields/{field_id}", world.developer, {}, 403),
    ]
    for method, path, who, body, status in cases:
        got, problem = await world.call(method, world.url(path), who, json=body or None)
        assert got == status, (method, path, body, problem)
    assert await world.count("custom_fields") == 1


async def test_values_round_trip_exactly(world: World) -> None:
    await fields_world(world)
    values = {
        "Severity": "high", "Platforms": ["web", "ios"], "Score": 3.25, "Ship date": "2030-02-28",
        "Notes": "ünïcode ✓ \"quoted\"\nnew line", "Owner": world.developer["id"],
    }  # fmt: skip
    issue = await world.create(custom_fields=values)
    assert issue["custom_fields"] == values
    _, again = await world.call("GET", world.url("/issues/1"), world.viewer)
    assert again["custom_fields"] == values
    (row,) = await world.rows("SELECT custom_fields FROM issues")
    stored = json.loads(row["custom_fields"])
    ids = {r["name"]: r["id"] for r in await world.rows("SELECT id, name FROM custom_fields")}
    assert stored == {ids[name]: value for name, value in values.items()}
    big = await world.create(custom_fields={"score": 12345678901234})
    assert big["custom_fields"] == {"Score": 12345678901234}


async def test_bad_values_are_422_naming_the_field(world: World) -> None:
    await fields_world(world)
    cases = [
        ({"Severity": "medium"}, "custom_fields.Severity"),
        ({"Severity": ["low"]}, "custom_fields.Severity"),
        ({"Score": "ten"}, "custom_fields.Score"),
        ({"Score": True}, "custom_fields.Score"),
        ({"Ship date": "28/02/2030"}, "custom_fields.Ship date"),
        ({"Ship date": "2030-02-30"}, "custom_fields.Ship date"),
        ({"Ship date": "2030-02-28T10:00:00Z"}, "custom_fields.Ship date"),
        ({"Platforms": ["web", "web"]}, "custom_fields.Platforms"),
        ({"Platforms": ["desktop"]}, "custom_fields.Platforms"),
        ({"Platforms": "web"}, "custom_fields.Platforms"),
        ({"Notes": 5}, "custom_fields.Notes"),
        ({"Notes": "x" * 10_001}, "custom_fields.Notes"),
        ({"Owner": world.outsider["id"]}, "custom_fields.Owner"),
        ({"Owner": "nobody"}, "custom_fields.Owner"),
        ({"Unknown": 1}, "custom_fields.Unknown"),
    ]
    before = await world.count("changes")
    for values, field in cases:
        status, problem = await world.call(
            "POST", world.url("/issues"), json={"title": "t", "custom_fields": values}
        )
        assert status == 422, (values, problem)
        assert [e["field"] for e in problem["errors"]] == [field], problem
    assert await world.count("issues") == 0 and await world.count("changes") == before
    status, problem = await world.call(
        "POST", world.url("/issues"),
        json={"title": "t", "custom_fields": {"Severity": "x", "Score": "y"}},
    )  # fmt: skip
    assert {e["field"] for e in problem["errors"]} == {
        "custom_fields.Severity", "custom_fields.Score",
    }  # fmt: skip


async def test_patch_merges_clears_and_logs_per_field(world: World) -> None:
    await fields_world(world)
    await world.create(custom_fields={"Severity": "low", "Score": 1})
    status, issue = await world.call(
        "PATCH", world.url("/issues/1"), world.developer,
        json={"custom_fields": {"severity": "high", "Notes": "n"}},
    )  # fmt: skip
    assert status == 200, issue
    assert issue["custom_fields"] == {"Severity": "high", "Score": 1, "Notes": "n"}
    status, issue = await world.call(
        "PATCH", world.url("/issues/1"), json={"custom_fields": {"Score": None}}
    )
    assert issue["custom_fields"] == {"Severity": "high", "Notes": "n"}
    fields = [(c["field"], c["old"], c["new"]) for c in await world.changes("issue") if c["field"]]
    assert fields == [
        ("custom_fields.Severity", "low", "high"), ("custom_fields.Notes", None, "n"),
        ("custom_fields.Score", 1, None),
    ]  # fmt: skip
    status, _ = await world.call(
        "PATCH", world.url("/issues/1"), json={"custom_fields": {"Severity": "nope"}}
    )
    assert status == 422
    assert (await world.rows("SELECT version FROM issues"))[0]["version"] == 3


async def test_required_fields_rename_and_delete(world: World) -> None:
    field = await define(world, name="Team", type="enum", options=["a", "b"], required=True)
    status, problem = await world.call("POST", world.url("/issues"), json={"title": "t"})
    assert status == 422 and problem["errors"][0]["field"] == "custom_fields.Team"
    issue = await world.create(custom_fields={"Team": "a"})
    status, problem = await world.call(
        "PATCH", world.url("/issues/1"), json={"custom_fields": {"Team": None}}
    )
    assert status == 422
    await world.call("PATCH", world.url(f"/fields/{field['id']}"), json={"name": "Squad"})
    _, issue = await world.call("GET", world.url("/issues/1"))
    assert issue["custom_fields"] == {"Squad": "a"}
    assert (await world.call("DELETE", world.url(f"/fields/{field['id']}")))[0] == 204
    _, issue = await world.call("GET", world.url("/issues/1"))
    assert issue["custom_fields"] == {}
    assert (await world.create())["custom_fields"] == {}


async def test_listed_issues_equal_the_issue_model_exactly(world: World) -> None:
    """The list and GET one issue render issues in SQL (storage.issues.ISSUE_JSON and
    issue_json); everything else (writes, search, the CLI) renders the pydantic model.
    Every field kind must come out the same in all three, types included."""
    fields = await fields_world(world)
    parent = await world.create(title="Parent")
    await world.create(
        title='Ünïcode ✓ "quoted" \\ back\nslash \u0001 ctrl', description="tab\there",
        priority="critical", type="bug", due_date="2031-01-02", estimate=90,
        parent=parent["key"], tags=["zeta", "Alpha", "beta"],
        assignees=[world.developer["id"], world.owner["id"]],
        custom_fields={
            "Severity": "high", "Platforms": ["web", "ios"], "Score": 12345678901234,
            "Ship date": "2030-02-28", "Notes": "ünï \"q\"\n", "Owner": world.developer["id"],
        },
    )  # fmt: skip
    await world.create(title="Float", custom_fields={"Score": 3.25, "Notes": ""})
    gone = await world.create(title="Field deleted later", custom_fields={"Severity": "low"})
    status, _ = await world.call("DELETE", world.url(f"/fields/{fields['severity']['id']}"))
    assert status == 204

    status, page = await world.call("GET", world.url("/issues?limit=200"), world.viewer)
    assert status == 200 and len(page["items"]) == 4
    core = world.client.app[CORE]
    access, _ = await act_as(core, world.org["slug"], "WEB", world.owner["id"], "api",
                             permission=Permission.PROJECT_READ)  # fmt: skip
    for listed in page["items"]:
        _, single = await world.call("GET", world.url(f"/issues/{listed['number']}"))
        assert json.dumps(listed, sort_keys=True) == json.dumps(single, sort_keys=True)
        model = await issues.get_issue(core, access, listed["number"])
        assert json.dumps(single, sort_keys=True) == json.dumps(
            json.loads(model.model_dump_json()), sort_keys=True
        )
    by_number = {item["number"]: item for item in page["items"]}
    assert by_number[2]["tags"] == ["Alpha", "beta", "zeta"]
    assert by_number[2]["custom_fields"]["Score"] == 12345678901234
    assert by_number[3]["custom_fields"] == {"Score": 3.25, "Notes": ""}
    assert by_number[gone["number"]]["custom_fields"] == {}
