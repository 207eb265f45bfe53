"""A create is held to the same rules as an update (issue 12 item 11).

A reporter could create an issue straight into `Closed`, assigned, in a sprint,
past the transition rules. Now: creating in a stage other than the project's
initial one is a move from it (transition rules and roles apply), and a
reporter's create cannot set any field a reporter's update cannot (anything but
title and description): one test per field, each 403 with nothing stored.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.issues_world import World, make_world
from tests.test_http_stages import put_rules


@pytest.fixture
async def world(api: Api, client: Any) -> World:
    return await make_world(api, client)


async def _values(world: World) -> dict[str, Any]:
    """A non-default value for every field a reporter's update may not change."""
    status, sprint = await world.call("POST", world.url("/sprints"), json={"name": "S1"})
    assert status == 201, sprint
    status, _ = await world.call("POST", world.url("/fields"), json={"name": "Sev", "type": "text"})
    assert status == 201
    status, _ = await world.call("POST", world.url("/tags"), json={"name": "ui"})
    assert status == 201
    parent = await world.create(title="Parent")
    return {
        "type": "bug",
        "priority": "critical",
        "status": "Closed",
        "assignees": [world.developer["id"]],
        "tags": ["ui"],
        "sprint_id": sprint["id"],
        "parent": parent["number"],
        "due_date": "2030-01-31",
        "estimate": 30,
        "custom_fields": {"Sev": "high"},
    }


FIELDS = ["type", "priority", "status", "assignees", "tags", "sprint_id", "parent",
          "due_date", "estimate", "custom_fields"]  # fmt: skip


@pytest.mark.parametrize("field", FIELDS)
async def test_a_reporters_create_cannot_set_what_their_update_cannot(
    world: World, field: str
) -> None:
    values = await _values(world)
    # what the reporter's update of their own issue refuses...
    mine = await world.create(world.reporter, title="Mine")
    patch = {field: values[field]}
    status, _ = await world.call("PATCH", world.url(f"/issues/{mine['number']}"), world.reporter,
                                 json=patch)  # fmt: skip
    assert status == 403
    # ...their create refuses too, and stores nothing
    issues_before = await world.count("issues")
    status, body = await world.call(
        "POST", world.url("/issues"), world.reporter, json={"title": "Sneaky", field: values[field]}
    )
    assert status == 403, body
    assert field in body["detail"]
    assert await world.count("issues") == issues_before
    # a developer may set it (the value itself is fine)
    status, body = await world.call(
        "POST", world.url("/issues"), world.developer, json={"title": "Fine", field: values[field]}
    )
    assert status == 201, body


async def test_a_reporter_may_still_create_with_title_description_and_defaults(
    world: World,
) -> None:
    body = {"title": "Plain", "description": "text", "type": "task", "priority": "normal",
            "status": "open", "assignees": [], "tags": [], "custom_fields": {},
            "parent": None}  # fmt: skip
    status, issue = await world.call("POST", world.url("/issues"), world.reporter, json=body)
    assert status == 201, issue
    assert issue["status"] == "Open" and issue["reporter"] == world.reporter["id"]


async def test_creating_in_a_later_stage_is_a_move_from_the_initial_one(world: World) -> None:
    status, _ = await put_rules(
        world, ("Open", "In Progress", "developer"), ("Open", "Resolved", "admin")
    )
    assert status == 200
    before = await world.count("issues")
    # no rule Open -> Closed: 409 for everyone, the admin included
    for who in (world.developer, world.owner):
        status, body = await world.call(
            "POST", world.url("/issues"), who, json={"title": "x", "status": "Closed"}
        )
        assert status == 409, body
    # Open -> Resolved needs an admin
    status, _ = await world.call(
        "POST", world.url("/issues"), world.developer, json={"title": "x", "status": "Resolved"}
    )
    assert status == 403
    assert await world.count("issues") == before
    created = await world.create(world.developer, title="dev", status="In Progress")
    assert created["status"] == "In Progress" and created["resolved_at"] is None
    resolved = await world.create(world.owner, title="admin", status="Resolved")
    assert resolved["status"] == "Resolved" and resolved["resolved_at"] is not None


async def test_without_rules_a_developer_may_create_in_any_stage(world: World) -> None:
    created = await world.create(world.developer, title="done already", status="Closed")
    assert created["status"] == "Closed" and created["resolved_at"] is not None
