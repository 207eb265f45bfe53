"""The research note's adversarial scenarios (§3) against a real server on 127.0.0.1,
with real replicas in temp dirs (docs/offline.md)."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import Api
from tests.offline_world import World, converged, view_issues
from tracker.http.app import create_app
from tracker.replica.client import SyncError
from tracker.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Faults:
    """A middleware on the real app: `drop_push` cuts the connection after the push
    handler committed (the client never hears the answer)."""

    def __init__(self) -> None:
        self.drop_push = 0
        self.pushes = 0

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path.endswith("/sync/push"):
            self.pushes += 1
            if self.drop_push:
                self.drop_push -= 1
                assert request.transport is not None
                request.transport.close()
        return response


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
async def world(aiohttp_client: Any, settings: Settings, faults: Faults, tmp_path: Path) -> World:
    app = create_app(settings)
    app.middlewares.append(faults.middleware)
    client = await aiohttp_client(app)
    found = World(client, Api(client), tmp_path)
    await found.setup()
    return found


async def new_issue(world: World, title: str, who: dict[str, Any] | None = None,
                    **extra: Any) -> dict[str, Any]:  # fmt: skip
    return await world.call("POST", "/orgs/acme/projects/WEB/issues", who or world.ann,  # type: ignore[no-any-return]
                            json={"title": title, **extra})  # fmt: skip


async def test_lost_push_response_is_retried_and_nothing_happens_twice(
    world: World, faults: Faults
) -> None:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    key = bob.create("WEB", "Crash on login")
    bob.comment(key, "Seen on 2.3")
    bob.update(key, tags=["bug"])
    faults.drop_push = 1
    with pytest.raises(SyncError) as cut:
        await bob.sync()
    assert cut.value.status == 0 and "pending changes kept" in cut.value.words()
    assert len(bob.journal()["pending"]) == 4  # tag.create + issue.tags came from one update
    report = await bob.sync()
    assert all(r.get("replayed") for _, r in report.pushed)
    assert [r["status"] for _, r in report.pushed] == ["applied"] * 4
    assert (key, "WEB-1") in report.renamed  # the same number both times
    issues = await world.issues()
    assert len(issues) == 1 and issues[0]["tags"] == ["bug"] and issues[0]["comment_count"] == 1
    await converged(world, bob)


async def test_permissions_revoked_while_offline(world: World) -> None:
    await new_issue(world, "Existing")
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.create("WEB", "New one", description="my long text")
    bob.update("WEB-1", priority="major")
    bob.comment("WEB-1", "a comment I typed")
    await world.call("PATCH", f"/orgs/acme/projects/WEB/members/{world.bob['id']}", world.ann,
                     json={"role": "viewer"})  # fmt: skip
    result = await bob.cli("sync")
    assert result.exit_code == 2, result.output
    assert result.output.count("REJECTED") == 3 and "[forbidden]" in result.output
    journal = bob.journal()
    assert journal["pending"] == [] and len(journal["rejected"]) == 3
    shown = await bob.cli("sync", "--rejected")
    assert "my long text" in shown.output and "a comment I typed" in shown.output
    assert (await world.issue("WEB-1"))["priority"] == "normal"
    await converged(world, bob)  # the local guesses are gone from the view
    again = await bob.sync()
    assert again.pushed == [] and again.rejected == 0


async def test_issue_deleted_while_edited_offline(world: World) -> None:
    await new_issue(world, "Doomed", description="old text")
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.update("WEB-1", description="new text")
    bob.comment("WEB-1", "words to keep")
    await world.call("DELETE", "/orgs/acme/projects/WEB/issues/1", world.ann)
    report = await bob.sync()
    codes = [r["problem"]["code"] for _, r in report.pushed]
    assert codes == ["target_deleted", "target_deleted"]
    assert bob.view_rows("SELECT * FROM issues WHERE deleted_at IS NULL") == []
    assert [r["args"]["body"] for r in bob.journal()["rejected"] if r["name"] == "comment.create"] \
        == ["words to keep"]  # fmt: skip
    await converged(world, bob)


async def test_stage_renamed_while_a_move_waits(world: World) -> None:
    await new_issue(world, "Card")
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.update("WEB-1", status="In Progress")
    stages = await world.call("GET", "/orgs/acme/projects/WEB/stages", world.ann)
    doing = next(s for s in stages["items"] if s["name"] == "In Progress")
    await world.call("PATCH", f"/orgs/acme/projects/WEB/stages/{doing['id']}", world.ann,
                     json={"name": "Doing"})  # fmt: skip
    report = await bob.sync()
    assert [r["status"] for _, r in report.pushed] == ["applied"]
    assert (await world.issue("WEB-1"))["status"] == "Doing"
    await converged(world, bob)


async def test_concurrent_description_edits_are_merged(world: World) -> None:
    text = "".join(f"line {n}\n" for n in range(1, 10))
    await new_issue(world, "Spec", description=text)
    ann, bob = await world.device(world.ann), await world.device(world.bob)
    await ann.clone("acme", "WEB")
    await bob.clone("acme", "WEB")
    ann.update("WEB-1", description=text.replace("line 2\n", "line two\n"))
    bob.update("WEB-1", description=text.replace("line 9\n", "line nine\n"))
    assert [r["status"] for _, r in (await ann.sync()).pushed] == ["applied"]
    result = await bob.cli("sync")
    assert result.exit_code == 0, result.output
    assert "merged 1 (WEB-1 description: merged with another edit)" in result.output
    merged = (await world.issue("WEB-1"))["description"]
    assert "line two\n" in merged and "line nine\n" in merged
    await ann.sync()
    await converged(world, ann, bob)


async def test_copied_replica_directory_gets_a_new_client_id(world: World) -> None:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    twin = await world.device(world.bob)
    assert bob.replica_dir is not None
    twin.replica_dir = twin.home / "copied-replica"
    shutil.copytree(bob.replica_dir, twin.replica_dir)
    bob.create("WEB", "From the original")
    twin.create("WEB", "From the copy")
    twin.comment("WEB-~" + twin.journal()["pending"][0].args["id"].replace("-", "")[-5:], "hi")
    await bob.sync()
    report = await twin.sync()
    assert report.new_client
    assert [r["status"] for _, r in report.pushed] == ["applied", "applied"]
    titles = sorted(i["title"] for i in await world.issues())
    assert titles == ["From the copy", "From the original"]
    assert twin.journal()["meta"]["client_id"] != bob.journal()["meta"]["client_id"]
    await bob.sync()
    await converged(world, bob, twin)


async def test_client_clock_days_ahead_orders_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    import tracker.replica.engine as engine
    import tracker.replica.store as store

    await new_issue(world, "Shared")
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    ahead = datetime.now(UTC) + timedelta(days=2)
    monkeypatch.setattr(store, "now_iso", lambda: ahead.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    monkeypatch.setattr(engine, "device_now", lambda: ahead)
    bob.update("WEB-1", priority="minor")  # made "in two days" by the device clock
    await world.call("PATCH", "/orgs/acme/projects/WEB/issues/1", world.ann,
                     json={"priority": "major"})  # fmt: skip
    key = bob.create("WEB", "Skewed")
    report = await bob.sync()
    # push order decides: bob's edit arrives last, so it wins, reported as a conflict
    statuses = [r["status"] for _, r in report.pushed]
    assert statuses == ["conflict_applied", "applied"]
    assert report.clock_offset is not None and report.clock_offset > 47 * 3600
    created = await world.issue(dict(report.renamed)[key])
    assert created["created_at"] < ahead.strftime("%Y-%m-%dT%H:%M")  # server time, not device
    from tracker.replica.words import lines

    assert any("clock is 4" in line and "ahead of the server" in line for line in lines(report))
    await converged(world, bob)


async def test_project_made_private_leaves_the_replica(world: World) -> None:
    ops = await world.api.project(world.ann, world.org, "OPS")
    await world.call("POST", "/orgs/acme/projects/OPS/issues", world.ann, json={"title": "Ops 1"})
    bob = await world.device(world.bob)  # an org member, not a member of OPS
    await bob.clone("acme")
    assert len(bob.view_rows("SELECT * FROM issues")) == 1
    bob.comment("OPS-1", "typed while it was visible")
    await world.call("PATCH", "/orgs/acme/projects/OPS", world.ann,
                     json={"visibility": "private"})  # fmt: skip
    result = await bob.cli("sync")
    assert result.exit_code == 2, result.output
    assert "OPS is no longer visible to you" in result.output
    assert bob.view_rows("SELECT * FROM issues") == []
    assert bob.view_rows("SELECT * FROM projects WHERE id = ?", ops["id"]) == []
    rejected = bob.journal()["rejected"]
    assert [r["problem"]["code"] for r in rejected] == ["not_found"]
    assert rejected[0]["args"]["body"] == "typed while it was visible"


async def test_protocol_too_old_is_426_in_words(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tracker.replica.client as client_module

    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.create("WEB", "Waits")
    monkeypatch.setattr(client_module, "PROTOCOL", 0)
    result = await bob.cli("sync")
    assert result.exit_code == 1
    assert "too old for the server" in result.output and "upgrade rhythm" in result.output
    assert len(bob.journal()["pending"]) == 1


async def test_revoked_client_is_told_so(world: World) -> None:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.create("WEB", "Lost laptop's issue")
    client_id = bob.journal()["meta"]["client_id"]
    await world.call("DELETE", f"/orgs/acme/sync/clients/{client_id}", world.bob)
    result = await bob.cli("sync")
    assert result.exit_code == 1 and "revoked" in result.output, result.output
    assert len(bob.journal()["pending"]) == 1


async def test_an_expired_access_token_is_refreshed_and_the_push_retried(world: World) -> None:
    from tracker.replica.client import Credentials, SyncClient

    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    bob.create("WEB", "After a refresh")
    with bob.env():
        credentials = Credentials.load(world.url)
        assert credentials is not None
        replica = bob.replica()
        async with SyncClient(credentials, "acme") as client:
            client.access = "expired-or-garbage"
            report = await replica.sync(client)
        replica.close()
    assert [r["status"] for _, r in report.pushed] == ["applied"]
    assert await view_issues(bob) and len(await world.issues()) == 1


async def test_a_second_sync_says_sync_in_progress(world: World) -> None:
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    replica = bob.replica()
    try:
        with replica.lock():
            result = await bob.cli("sync")
    finally:
        replica.close()
    assert result.exit_code == 4 and "sync in progress" in result.output
