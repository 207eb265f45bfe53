"""The offline CLI against a real server: clone, work offline, sync (docs/offline.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.offline_world import World, converged, view_issues


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    return found


async def test_offline_create_comment_and_parent_get_real_numbers(world: World) -> None:
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Old"})
    ann = await world.device(world.ann)
    assert await ann.clone("acme", "WEB") == 1
    key = ann.create("WEB", "Crash on login", type="bug")
    assert key.startswith("WEB-~") and len(key) == len("WEB-~3fa9c")
    ann.comment(key, "Seen on 2.3")
    child = ann.create("WEB", "Child", parent=key)
    ann.update("WEB-1", priority="major")
    # offline: the view shows them, the server has nothing yet
    titles = {i["title"] for i in await view_issues(ann)}
    assert {"Crash on login", "Child", "Old"} <= titles
    assert len(await world.issues()) == 1
    assert len(ann.journal()["pending"]) == 4

    report = await ann.sync()
    assert [r["status"] for _, r in report.pushed] == ["applied"] * 4
    assert (key, "WEB-2") in report.renamed and (child, "WEB-3") in report.renamed
    crash = await world.issue("WEB-2")
    assert crash["title"] == "Crash on login" and crash["comment_count"] == 1
    assert (await world.issue("WEB-3"))["parent"] == "WEB-2"
    assert (await world.issue("WEB-1"))["priority"] == "major"
    assert ann.journal()["pending"] == []
    # the provisional key still resolves, now to the real number
    shown = await ann.cli("issue", "show", key)
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("WEB-2  Crash on login") and "Seen on 2.3" in shown.output
    await converged(world, ann)


async def test_sync_words_and_pulled_changes_from_others(world: World) -> None:
    ann = await world.device(world.ann)
    await ann.clone("acme", "WEB")
    for title in ("one", "two"):
        await world.call("POST", "/orgs/acme/projects/WEB/issues", world.bob, json={"title": title})
    key = ann.create("WEB", "Mine")
    result = await ann.cli("sync")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "pushed 1: applied 1"
    assert f"{key} is now WEB-3" in lines
    assert any(line.startswith("pulled ") and "from 1 person" in line for line in lines)
    await converged(world, ann)
