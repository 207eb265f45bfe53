"""Adversarial checklist items (input, RBAC) that had no test of their own yet.

- mass assignment: a PATCH naming server-owned fields (`project_id`, `author_id`,
  `created_at`, `number`, `role`, `confidential`...) is 422 and changes nothing;
- LIKE-style wildcards in filter values match only themselves;
- bulk sizes: 300k ids in a bulk body is 413 (body cap), 60k is 422 (list cap), never 500.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.conftest import Api
from tests.issues_world import World, make_world

SERVER_OWNED = ["project_id", "author_id", "created_at", "updated_at", "number", "role",
                "confidential", "reporter", "id", "key", "version", "resolved_at"]  # fmt: skip


@pytest.fixture
async def world(api: Api, client: Any) -> World:
    return await make_world(api, client)


@pytest.mark.parametrize("field", SERVER_OWNED)
async def test_mass_assignment_through_patch_is_422(world: World, field: str) -> None:
    await world.create(world.reporter, title="Mine")
    before = await world.rows("SELECT * FROM issues")
    changes = await world.count("changes")
    for who in (world.reporter, world.owner):
        status, body = await world.call(
            "PATCH", world.url("/issues/1"), who, json={"title": "Mine", field: "x"}
        )
        assert status == 422, body
        assert field in [e["field"] for e in body["errors"]]
    assert await world.rows("SELECT * FROM issues") == before
    assert await world.count("changes") == changes


async def test_wildcards_in_filter_values_match_only_themselves(world: World) -> None:
    await world.create(title="tagged", tags=["ui"])
    await world.create(title="plain")
    for params in ({"tag": "%"}, {"tag": "_i"}, {"status": "%"}, {"q": "tag:%"},
                   {"q": "status:_pen"}, {"q": "assignee:%"}):  # fmt: skip
        status, body = await world.call("GET", world.url("/issues"), params=params)
        assert status in (200, 400), (params, body)
        if status == 200:
            assert body["items"] == [], (params, body)


@pytest.mark.parametrize(
    ("path", "key", "count", "status"),
    [
        ("/issues/1/assignees", "user_ids", 300_000, 413),
        ("/issues/1/tags", "tags", 300_000, 413),
        ("/issues/1/assignees", "user_ids", 60_000, 422),
        ("/issues/1/tags", "tags", 60_000, 422),
    ],
)
async def test_huge_bulk_lists_are_refused(
    world: World, path: str, key: str, count: int, status: int
) -> None:
    await world.create(title="target")
    body = io.BytesIO(json.dumps({key: [f"t{n}" for n in range(count)]}).encode())
    got, problem = await world.call(
        "PUT", world.url(path), data=body, headers={"Content-Type": "application/json"}
    )
    assert got == status, problem
    assert await world.count("issue_tags") == 0 and await world.count("tags") == 0
