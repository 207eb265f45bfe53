"""Issue 17 follow-ups against a real server on 127.0.0.1 with real replicas in temp dirs:
the push's `incomplete` stop, text drafts and `rhythm issue resolve`, `rhythm scope`
(docs/offline.md)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api, make_settings
from tests.offline_world import World, converged
from tracker.replica.client import Credentials
from tracker.services.sync_mutations import REGISTRY, Ctx
from tracker.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Tenants the server shares: another connection can then take a tenant's write lock
    (`TenantLock`), as it can when a tenant was opened beside another process's reader."""
    return make_settings(tmp_path / "data", exclusive_tenants=False)


@pytest.fixture
async def world(client: Any, api: Api, tmp_path: Path) -> World:
    found = World(client, api, tmp_path)
    await found.setup()
    return found


# --- the push stopped early (`incomplete`) ------------------------------------------------


class TenantLock:
    """A second connection to the tenant's real file holding its write lock, as another
    process would: the server's next write waits out its busy timeout and fails."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None
        self.taken = 0
        self.lock = threading.Lock()

    def take(self) -> None:
        with self.lock:
            self.conn = sqlite3.connect(self.path, isolation_level=None,
                                        check_same_thread=False)  # fmt: skip
            self.conn.execute("BEGIN IMMEDIATE")
            self.taken += 1

    def release(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.execute("ROLLBACK")
                self.conn.close()
                self.conn = None


async def test_push_stopped_by_a_busy_database_is_resumed_and_nothing_runs_twice(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue = await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann,
                             json={"title": "Busy"})  # fmt: skip
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    for n in range(1, 5):
        bob.comment("WEB-1", f"comment {n}")
    lock = TenantLock(settings.data_dir / world.org["id"] / "tracker.db")
    calls: list[str] = []
    key = ("comment.create", 1)
    original = REGISTRY[key]

    async def hook(ctx: Ctx) -> None:
        """Test-only: before the 3rd comment's first try, another connection takes the
        tenant's write lock; at its retry the lock is let go."""
        calls.append(ctx.args.body)
        if ctx.args.body == "comment 3":
            if lock.taken == 0:
                lock.take()
            else:
                lock.release()
        if original.prepare is not None:
            await original.prepare(ctx)

    monkeypatch.setitem(REGISTRY, key, dataclasses.replace(original, prepare=hook))
    try:
        report = await bob.sync()
    finally:
        lock.release()
    assert lock.taken == 1
    assert report.retried == 1 and report.stopped is None
    assert calls == ["comment 1", "comment 2", "comment 3", "comment 3", "comment 4"]
    assert [r["status"] for _, r in report.pushed] == ["applied"] * 4
    assert bob.journal()["pending"] == []
    comments = await world.call("GET", "/orgs/acme/projects/WEB/issues/1/comments", world.ann)
    assert sorted(c["body"] for c in comments["items"]) == [f"comment {n}" for n in range(1, 5)]
    assert (await world.issue("WEB-1"))["comment_count"] == 4 == issue["comment_count"] + 4
    await converged(world, bob)


async def test_a_push_that_stays_incomplete_keeps_the_rest_pending(
    world: World, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracker.replica.engine as engine

    monkeypatch.setattr(engine, "INCOMPLETE_RETRY_SECONDS", (0.0,))
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "X"})
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.comment("WEB-1", "first")
    bob.comment("WEB-1", "second")
    key = ("comment.create", 1)
    original = REGISTRY[key]
    lock = TenantLock(settings.data_dir / world.org["id"] / "tracker.db")

    async def hook(ctx: Ctx) -> None:
        if ctx.args.body == "second" and lock.conn is None:
            lock.take()  # held through both tries

    monkeypatch.setitem(REGISTRY, key, dataclasses.replace(original, prepare=hook))
    try:
        result = await bob.cli("sync")
    finally:
        lock.release()
    assert result.exit_code == 1, result.output
    assert "stopped the push early" in result.output and "kept pending" in result.output
    assert [m.label for m in bob.journal()["pending"]] == ["WEB-1 comment"]
    monkeypatch.setitem(REGISTRY, key, original)
    report = await bob.sync()
    assert [r["status"] for _, r in report.pushed] == ["applied"]
    comments = await world.call("GET", "/orgs/acme/projects/WEB/issues/1/comments", world.ann)
    assert [c["body"] for c in comments["items"]] == ["first", "second"]


# --- text drafts and `rhythm issue resolve` ---------------------------------------------

TEXT = "".join(f"line {n}\n" for n in range(1, 10))
DRAFT_LINE = (
    "WEB-1 description: both edited, kept the server's; your text is a draft —"
    " `rhythm issue resolve WEB-1`"
)


async def _overlapping_edit(world: World) -> Any:
    """ann and bob both rewrite line 2 offline; ann syncs first: bob's text is a draft."""
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann,
                     json={"title": "Spec", "description": TEXT})  # fmt: skip
    ann, bob = await world.device(world.ann), await world.device(world.bob)
    await ann.clone("acme", "WEB")
    await bob.clone("acme", "WEB")
    ann.update("WEB-1", description=TEXT.replace("line 2\n", "line two, says ann\n"))
    bob.update("WEB-1", description=TEXT.replace("line 2\n", "line two, says bob\n"))
    assert [r["status"] for _, r in (await ann.sync()).pushed] == ["applied"]
    return ann, bob


def _drafts(device: Any) -> list[Any]:
    from tracker.replica import drafts

    replica = device.replica()
    try:
        return drafts.listed(replica.journal.conn)
    finally:
        replica.close()


async def test_an_overlapping_description_edit_becomes_a_draft_and_is_resolved(
    world: World, tmp_path: Path
) -> None:
    ann, bob = await _overlapping_edit(world)
    result = await bob.cli("sync")
    assert result.exit_code == 0, result.output
    assert "kept both 1" in result.output and DRAFT_LINE in result.output
    theirs = TEXT.replace("line 2\n", "line two, says ann\n")
    assert (await world.issue("WEB-1"))["description"] == theirs  # no marker published
    assert bob.journal()["rejected"] == []  # a draft, not a rejection
    [draft] = _drafts(bob)
    assert (draft.key, draft.field, draft.theirs) == ("WEB-1", "description", theirs)
    assert draft.mine == TEXT.replace("line 2\n", "line two, says bob\n")
    assert draft.merged.startswith(
        "line 1\n<<<<<<< server\nline two, says ann\n||||||| base\n"
        "line 2\n=======\nline two, says bob\n>>>>>>> yours\nline 3\n"
    )
    status = await bob.cli("status")
    assert DRAFT_LINE in status.output, status.output
    assert bob.view_rows("SELECT description FROM issues")[0][0] == theirs

    shown = await bob.cli("issue", "resolve", "WEB-1")  # not at a terminal: shows the merge
    assert shown.exit_code == 0 and "<<<<<<< server" in shown.output, shown.output
    unfinished = tmp_path / "unfinished.md"
    unfinished.write_text(draft.merged, encoding="utf-8")
    refused = await bob.cli("issue", "resolve", "WEB-1", "--edit-file", str(unfinished))
    assert refused.exit_code != 0 and "conflict markers" in refused.output, refused.output
    assert bob.journal()["pending"] == [] and len(_drafts(bob)) == 1

    both = TEXT.replace("line 2\n", "line two, says ann and bob\n")
    finished = tmp_path / "finished.md"
    finished.write_text(both, encoding="utf-8")
    done = await bob.cli("issue", "resolve", "WEB-1", "--edit-file", str(finished))
    assert done.exit_code == 0, done.output
    assert "WEB-1 description: resolved (applied); the draft is gone" in done.output
    assert (await world.issue("WEB-1"))["description"] == both
    assert _drafts(bob) == [] and bob.journal()["pending"] == []
    assert DRAFT_LINE not in (await bob.cli("status")).output
    await ann.sync()
    await converged(world, ann, bob)


async def test_resolve_takes_mine_or_theirs_with_json(world: World) -> None:
    ann, bob = await _overlapping_edit(world)
    await bob.sync()
    mine = TEXT.replace("line 2\n", "line two, says bob\n")
    result = await bob.cli("issue", "resolve", "WEB-1", "--take", "mine", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["action"] == "mine" and body["result"]["status"] == "applied"
    assert body["draft"]["field"] == "description" and body["draft"]["mine"] == mine
    assert (await world.issue("WEB-1"))["description"] == mine
    assert _drafts(bob) == []
    # ann's turn: she edits line 2 again over bob's, while bob does the same
    await ann.sync()
    ann.update("WEB-1", description=mine.replace("says bob", "says ann again"))
    bob.update("WEB-1", description=mine.replace("says bob", "says bob again"))
    await bob.sync()
    await ann.sync()
    [draft] = _drafts(ann)
    gone = await ann.cli("issue", "resolve", "WEB-1", "--take", "theirs")
    assert gone.exit_code == 0 and "kept the server's text; your draft is dropped" in gone.output
    assert _drafts(ann) == [] and ann.journal()["pending"] == []
    assert (await world.issue("WEB-1"))["description"] == draft.theirs
    missing = await ann.cli("issue", "resolve", "WEB-1")
    assert missing.exit_code != 0 and "no draft on WEB-1" in missing.output


async def test_a_resolution_made_offline_waits_and_a_draft_survives_a_reclone(
    world: World,
) -> None:
    _, bob = await _overlapping_edit(world)
    await bob.sync()
    dead = "http://127.0.0.1:9"  # nothing listens there: this computer is offline
    assert bob.credentials is not None
    with bob.env():
        dataclasses.replace(bob.credentials, url=dead).save()
    _point(bob, dead)
    result = await bob.cli("issue", "resolve", "WEB-1", "--take", "mine")
    assert result.exit_code == 1 and "recorded; not sent" in result.output, result.output
    [draft] = _drafts(bob)
    assert draft.resolving and len(bob.journal()["pending"]) == 1
    _point(bob, bob.url)
    with bob.env():  # the CLI's syncs rotated the refresh token
        bob.credentials = Credentials.load(bob.url)
    await bob.clone("acme", "WEB")  # a re-clone keeps pending and drafts
    assert len(_drafts(bob)) == 1 and len(bob.journal()["pending"]) == 1
    report = await bob.sync()
    assert [r["status"] for _, r in report.pushed] == ["applied"]
    assert _drafts(bob) == []
    assert (await world.issue("WEB-1"))["description"] == draft.mine


def _point(device: Any, url: str) -> None:
    replica = device.replica()
    try:
        replica.journal.set(server=url)
    finally:
        replica.close()


async def test_an_overlapping_comment_edit_is_a_draft_too(world: World) -> None:
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "C"})
    made = await world.call("POST", "/orgs/acme/projects/WEB/issues/1/comments", world.bob,
                            json={"body": "first take\nsecond line\n"})  # fmt: skip
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    where = f"/orgs/acme/projects/WEB/issues/1/comments/{made['id']}"
    await world.call("PATCH", where, world.bob,
                     json={"body": "first take, from the web\nsecond line\n"})  # fmt: skip
    replica = bob.replica()
    try:  # the replica records comment edits (no `rhythm` command types one yet)
        replica.record("comment.edit", {"id": made["id"], "base": "first take\nsecond line\n",
                                        "body": "first take, offline\nsecond line\n"},
                       "WEB-1 comment edit")  # fmt: skip
    finally:
        replica.close()
    result = await bob.cli("sync")
    field = f"comment:{made['id']}"
    assert f"WEB-1 comment {made['id']}: both edited, kept the server's" in result.output
    assert f"`rhythm issue resolve WEB-1 --field {field}`" in result.output, result.output
    done = await bob.cli("issue", "resolve", "WEB-1", "--field", field, "--take", "mine")
    assert done.exit_code == 0 and "resolved (applied)" in done.output, done.output
    comments = await world.call("GET", "/orgs/acme/projects/WEB/issues/1/comments", world.ann)
    assert comments["items"][0]["body"] == "first take, offline\nsecond line\n"
    assert _drafts(bob) == []


# --- rhythm scope ------------------------------------------------------------------------


async def test_scope_add_brings_a_project_in_and_remove_purges_it(world: World) -> None:
    await world.api.project(world.ann, world.org, "OPS")
    for title in ("Ops one", "Ops two"):
        await world.call("POST", "/orgs/acme/projects/OPS/issues", world.ann,
                         json={"title": title})  # fmt: skip
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Web"})
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    listed = await bob.cli("scope")
    assert listed.exit_code == 0 and "scope: WEB" in listed.output, listed.output
    assert "OPS" not in listed.output

    nope = await bob.cli("scope", "add", "NOPE")
    assert nope.exit_code == 1 and "no project NOPE you can read" in nope.output, nope.output
    added = await bob.cli("scope", "add", "ops")
    assert added.exit_code == 0, added.output
    assert "scope: OPS, WEB" in added.output
    assert "OPS is now visible to you: copied into this replica" in added.output
    titles = {r[0] for r in bob.view_rows("SELECT title FROM issues")}
    assert titles == {"Web", "Ops one", "Ops two"}
    body = json.loads((await bob.cli("scope", "--json")).output)
    assert body["scope"] == ["OPS", "WEB"]
    assert {p["key"]: p["issues"] for p in body["projects"]} == {"OPS": 2, "WEB": 1}

    # later changes in the added project arrive by pull as usual
    await world.call("POST", "/orgs/acme/projects/OPS/issues", world.ann,
                     json={"title": "Ops three"})  # fmt: skip
    await bob.sync()
    assert len(bob.view_rows("SELECT * FROM issues")) == 4

    bob.comment("OPS-1", "typed before removing OPS")
    refused = await bob.cli("scope", "remove", "OPS")
    assert refused.exit_code != 0 and "wait to be pushed" in refused.output, refused.output
    assert "OPS-1 comment" in refused.output and len(bob.journal()["pending"]) == 1
    removed = await bob.cli("scope", "remove", "OPS", "--drop-pending")
    assert removed.exit_code == 0, removed.output
    assert "moved to `rhythm sync --rejected`: OPS-1 comment" in removed.output
    assert "OPS is no longer visible to you: its data left this replica" in removed.output
    assert {r[0] for r in bob.view_rows("SELECT title FROM issues")} == {"Web"}
    assert bob.view_rows("SELECT * FROM projects WHERE key = 'OPS'") == []
    journal = bob.journal()
    assert journal["pending"] == [] and journal["meta"]["scope"] == "WEB"
    [kept] = journal["rejected"]
    assert kept["problem"]["code"] == "scope_removed"
    assert kept["args"]["body"] == "typed before removing OPS"
    comments = await world.call("GET", "/orgs/acme/projects/OPS/issues/1/comments", world.ann)
    assert comments["items"] == []  # never sent
    await bob.sync()  # nothing of OPS comes back
    assert {r[0] for r in bob.view_rows("SELECT title FROM issues")} == {"Web"}
    await converged(world, bob)


async def test_scope_remove_from_every_project(world: World) -> None:
    await world.api.project(world.ann, world.org, "OPS")
    await world.call("POST", "/orgs/acme/projects/OPS/issues", world.ann, json={"title": "Ops"})
    await world.call("POST", "/orgs/acme/projects/WEB/issues", world.ann, json={"title": "Web"})
    bob = await world.device(world.bob)
    await bob.clone("acme")
    assert "every project you can read" in (await bob.cli("scope")).output
    same = await bob.cli("scope", "add", "WEB")
    assert same.exit_code == 0 and "scope unchanged (every project" in same.output, same.output
    removed = await bob.cli("scope", "remove", "OPS")
    assert removed.exit_code == 0 and "scope: WEB" in removed.output, removed.output
    assert {r[0] for r in bob.view_rows("SELECT title FROM issues")} == {"Web"}
    last = await bob.cli("scope", "remove", "WEB")
    assert last.exit_code != 0 and "at least one project" in last.output
