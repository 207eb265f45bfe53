"""`rhythm issue comment-edit` on a replica, against a real server on 127.0.0.1 with real
replicas in temp dirs: a `comment.edit` mutation with the view's text as its base, sent
by `rhythm sync` and merged by the server; an overlap becomes a draft (docs/offline.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.offline_world import Device, World

COMMENTS = "/orgs/acme/projects/WEB/issues/{n}/comments"


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    await found.call("POST", "/orgs/acme/projects/WEB/issues", found.ann, json={"title": "C"})
    return found


async def _comment(world: World, who: dict[str, Any], body: str) -> str:
    made = await world.call("POST", COMMENTS.format(n=1), who, json={"body": body})
    return str(made["id"])


async def _server_bodies(world: World, n: int = 1) -> list[str]:
    page = await world.call("GET", COMMENTS.format(n=n), world.ann)
    return [c["body"] for c in page["items"]]


async def _bob(world: World) -> Device:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    return bob


async def test_an_offline_edit_shows_at_once_and_sync_sends_it(world: World) -> None:
    made = await _comment(world, world.bob, "seen on 2.3")
    bob = await _bob(world)
    result = await bob.cli("issue", "comment-edit", "WEB-1", made, "seen on 2.3 and 2.4")
    assert result.exit_code == 0, result.output
    assert result.output == (f"recorded: WEB-1 comment {made} edit (offline; `rhythm sync`"
                             " sends it)\n")  # fmt: skip
    (pending,) = bob.journal()["pending"]
    assert (pending.name, pending.args) == (
        "comment.edit", {"id": made, "base": "seen on 2.3", "body": "seen on 2.3 and 2.4"}
    )  # fmt: skip
    shown = await bob.cli("issue", "comments", "WEB-1", "--json")
    assert [c["body"] for c in json.loads(shown.stdout)["items"]] == ["seen on 2.3 and 2.4"]
    assert await _server_bodies(world) == ["seen on 2.3"]  # nothing sent yet
    synced = await bob.cli("sync")
    assert synced.exit_code == 0, synced.output
    assert "pushed 1: applied 1" in synced.output, synced.output
    assert await _server_bodies(world) == ["seen on 2.3 and 2.4"]
    assert bob.journal()["pending"] == []
    again = await bob.cli("issue", "comment-edit", "WEB-1", made, "seen on 2.3 and 2.4")
    assert again.exit_code == 0 and "nothing to change" in again.output, again.output
    assert bob.journal()["pending"] == []


async def test_someone_elses_comment_is_refused_locally(world: World) -> None:
    made = await _comment(world, world.ann, "ann's words")
    bob = await _bob(world)
    result = await bob.cli("issue", "comment-edit", "WEB-1", made, "bob's words now")
    assert result.exit_code == 1, result.output
    assert "only the author can edit a comment" in result.output
    missing = await bob.cli("issue", "comment-edit", "WEB-1", "0" * 36, "x")
    assert missing.exit_code == 3 and "no comment" in missing.output, missing.output
    empty = await bob.cli("issue", "comment-edit", "WEB-1", made, "")
    assert empty.exit_code == 1 and "body" in empty.output, empty.output
    assert bob.journal()["pending"] == []
    shown = await bob.cli("issue", "comments", "WEB-1", "--json")
    assert [c["body"] for c in json.loads(shown.stdout)["items"]] == ["ann's words"]


async def test_edits_of_other_lines_meanwhile_are_merged(world: World) -> None:
    made = await _comment(world, world.bob, "one\ntwo\nthree\n")
    bob = await _bob(world)
    where = COMMENTS.format(n=1) + f"/{made}"
    await world.call("PATCH", where, world.bob, json={"body": "one, on the web\ntwo\nthree\n"})
    result = await bob.cli("issue", "comment-edit", "WEB-1", made, "one\ntwo\nthree, offline\n")
    assert result.exit_code == 0, result.output
    synced = await bob.cli("sync")
    assert synced.exit_code == 0, synced.output
    assert await _server_bodies(world) == ["one, on the web\ntwo\nthree, offline\n"]
    shown = await bob.cli("issue", "comments", "WEB-1", "--json")
    assert [c["body"] for c in json.loads(shown.stdout)["items"]] == [
        "one, on the web\ntwo\nthree, offline\n"
    ]


async def test_an_overlapping_edit_becomes_a_draft_and_is_resolved(world: World) -> None:
    made = await _comment(world, world.bob, "first take\nsecond line\n")
    bob = await _bob(world)
    where = COMMENTS.format(n=1) + f"/{made}"
    await world.call("PATCH", where, world.bob,
                     json={"body": "first take, from the web\nsecond line\n"})  # fmt: skip
    result = await bob.cli("issue", "comment-edit", "WEB-1", made,
                           "first take, offline\nsecond line\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    synced = await bob.cli("sync")
    assert synced.exit_code == 0, synced.output
    field = f"comment:{made}"
    assert f"WEB-1 comment {made}: both edited, kept the server's" in synced.output
    assert f"`rhythm issue resolve WEB-1 --field {field}`" in synced.output, synced.output
    assert await _server_bodies(world) == ["first take, from the web\nsecond line\n"]
    done = await bob.cli("issue", "resolve", "WEB-1", "--field", field, "--take", "mine")
    assert done.exit_code == 0 and "resolved (applied)" in done.output, done.output
    assert await _server_bodies(world) == ["first take, offline\nsecond line\n"]


async def test_a_comment_made_offline_on_an_offline_issue_is_edited_before_sync(
    world: World,
) -> None:
    bob = await _bob(world)
    key = bob.create("WEB", "Made offline")
    made = bob.comment(key, "typo'd wrds")
    result = await bob.cli("issue", "comment-edit", key, made, "typo'd words, fixed")
    assert result.exit_code == 0, result.output
    assert f"recorded: {key} comment {made} edit" in result.output
    more = await bob.cli("issue", "comment", key, "and another")  # shown by its ~ key too
    assert more.exit_code == 0 and more.output.startswith(f"commented on {key} ("), more.output
    same = await bob.cli("issue", "update", key, "--title", "Made offline")
    assert same.output == f"{key}: nothing to change\n", same.output
    synced = await bob.cli("sync")
    assert synced.exit_code == 0, synced.output
    assert await _server_bodies(world, n=2) == ["typo'd words, fixed", "and another"]
