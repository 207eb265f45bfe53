"""kill -9 in the middle of a push: of the client, and of the server (docs/offline.md).

Whatever instant the kill lands on, the next `rhythm sync` ends with every offline
change on the server exactly once (push is answered exactly once per mutation id)
and the replica converged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import Api
from tests.offline_world import World, converged
from tracker.http.app import create_app
from tracker.replica.client import SyncError
from tracker.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FAST = {"RHYTHM_LOG_LEVEL": "warning", "RHYTHM_ARGON2_TIME_COST": "1",
        "RHYTHM_ARGON2_MEMORY_KIB": "8192", "RHYTHM_LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
        "RHYTHM_SIGNUPS_PER_ADDRESS": "0", "RHYTHM_MAX_ORGS_PER_USER": "0"}  # fmt: skip


class Holder:
    """Holds the answer of the first push after its handler committed."""

    def __init__(self) -> None:
        self.committed = asyncio.Event()
        self.release = asyncio.Event()
        self.armed = True

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response = await handler(request)
        if request.path.endswith("/sync/push") and self.armed:
            self.armed = False
            self.committed.set()
            await asyncio.wait_for(self.release.wait(), 30)
        return response


async def test_kill_9_of_the_client_mid_push(
    aiohttp_client: Any, settings: Settings, tmp_path: Path
) -> None:
    holder = Holder()
    app = create_app(settings)
    app.middlewares.append(holder.middleware)
    client = await aiohttp_client(app)
    world = World(client, Api(client), tmp_path)
    await world.setup()
    bob = await world.device(world.bob)
    await bob.clone("acme", "WEB")
    keys = [bob.create("WEB", f"offline {n}") for n in range(5)]
    bob.comment(keys[0], "first!")
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "sync", cwd=ROOT,
        env={**os.environ, "RHYTHM_HOME": str(bob.home), "RHYTHM_REPLICA": str(bob.replica_dir)},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.wait_for(holder.committed.wait(), 60)  # the server committed the batch
    child.send_signal(signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL
    holder.release.set()
    assert len(bob.journal()["pending"]) == 6  # the client never heard the answer
    report = await bob.sync()
    assert [r.get("replayed") for _, r in report.pushed] == [True] * 6
    issues = await world.issues()
    assert sorted(i["number"] for i in issues) == [1, 2, 3, 4, 5]
    assert sum(i["comment_count"] for i in issues) == 1
    await converged(world, bob)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _serve(data: Path, port: int, log: Path) -> asyncio.subprocess.Process:
    with log.open("ab") as errors:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data), "--port",
            str(port), cwd=ROOT, env={**os.environ, **FAST}, stdout=asyncio.subprocess.DEVNULL,
            stderr=errors,
        )  # fmt: skip
    async with aiohttp.ClientSession() as session:
        for _ in range(200):
            try:
                async with session.get(f"http://127.0.0.1:{port}/api/v1/health/live") as r:
                    if r.status == 200:
                        return process
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError(log.read_text()[-2000:])


@pytest.mark.parametrize("delay", [0.0, 0.25])
async def test_kill_9_of_the_server_mid_push(tmp_path: Path, delay: float) -> None:
    port, data, log = _free_port(), tmp_path / "data", tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}"
    server = await _serve(data, port, log)
    session = aiohttp.ClientSession(base_url=url)
    try:
        world = World(session, Api(session), tmp_path, url)  # type: ignore[arg-type]
        await world.setup()
        bob = await world.device(world.bob)
        await bob.clone("acme", "WEB")
        for n in range(105):  # two push batches
            bob.create("WEB", f"offline {n}")
        pushing = asyncio.create_task(bob.sync())
        await asyncio.sleep(delay)
        server.send_signal(signal.SIGKILL)
        await server.wait()
        with contextlib.suppress(SyncError):  # what the server committed, it committed
            await pushing
        server = await _serve(data, port, log)
        await session.close()
        session = aiohttp.ClientSession(base_url=url)
        world.client, world.api = session, Api(session)  # type: ignore[arg-type]
        await bob.sync()
        assert bob.journal()["pending"] == []
        issues = await world.issues()
        assert sorted(i["number"] for i in issues) == list(range(1, 106))
        assert len({i["title"] for i in issues}) == 105
        await converged(world, bob)
    finally:
        await session.close()
        server.send_signal(signal.SIGTERM)
        await server.wait()
