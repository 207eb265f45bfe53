"""Issue 17 follow-ups against a real server on 127.0.0.1 with real replicas in temp dirs:
the push's `incomplete` stop, text drafts and `rhythm issue resolve`, `rhythm scope`
(docs/offline.md)."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api
from tests.offline_world import World, converged
from tracker.services.sync_mutations import REGISTRY, Ctx
from tracker.settings import Settings


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
