"""Webhooks across a crash: the real server in its own process, killed with SIGKILL, then
started again on the same data directory.

1. Killed after a change committed and before its delivery completed (the receiver's
   port accepts TCP but never reads): after restart it is delivered exactly once.
2. Killed while a slow receiver holds the request: after restart it is sent again with
   the same X-Rhythm-Delivery id, so the receiver can drop the duplicate.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.webhook_receiver import Receiver, free_port

ROOT = Path(__file__).resolve().parent.parent


class Server:
    """`rhythm serve` in a subprocess on a fixed data dir and port."""

    def __init__(self, tmp_path: Path) -> None:
        self.data_dir = tmp_path / "data"
        self.port = free_port()
        self.log = tmp_path / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    async def start(self) -> None:
        env = {**os.environ, "RHYTHM_LOG_LEVEL": "warning", "RHYTHM_ARGON2_TIME_COST": "1",
               "RHYTHM_ARGON2_MEMORY_KIB": "8192", "RHYTHM_WEBHOOK_ALLOW_PRIVATE": "true",
               "RHYTHM_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
               "RHYTHM_WEBHOOK_RETRY_CAP_SECONDS": "0.5"}  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(self.data_dir),
                 "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                try:
                    async with session.get(self.base + "/health/live") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(self.log.read_text()[-2000:])

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    found = Server(tmp_path)
    yield found
    found.stop()


async def call(method: str, url: str, token: str | None = None, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers=headers) as response,
    ):
        assert response.status < 300, await response.text()
        return await response.json() if response.status != 204 else None


async def seed(server: Server, hook_url: str) -> tuple[str, str]:
    """A user, an org, a project and a hook; returns (token, org id)."""
    base = server.base
    await call("POST", base + "/auth/register", body={"email": "a@example.com",
                                                      "password": "crash-pass-1"})  # fmt: skip
    tokens = await call("POST", base + "/auth/login",
                        body={"email": "a@example.com", "password": "crash-pass-1"})  # fmt: skip
    token = tokens["access_token"]
    org = await call("POST", base + "/orgs", token, {"name": "Acme", "slug": "acme"})
    await call("POST", base + "/orgs/acme/projects", token, {"name": "Web", "key": "WEB"})
    await call("POST", base + "/orgs/acme/projects/WEB/webhooks", token,
               {"url": hook_url, "events": ["issue.created"]})  # fmt: skip
    return token, org["id"]


def stored_deliveries(server: Server, org_id: str) -> list[tuple[str, str, int]]:
    """(id, status, attempts) straight from the tenant file, while no server runs."""
    with sqlite3.connect(server.data_dir / org_id / "tracker.db") as conn:
        return conn.execute(
            "SELECT id, status, attempt_count FROM webhook_deliveries ORDER BY rowid"
        ).fetchall()


async def test_killed_before_delivery_delivers_once_after_restart(server: Server) -> None:
    port = free_port()
    mute = socket.create_server(("127.0.0.1", port), backlog=8)  # accepts TCP, never reads
    try:
        await server.start()
        token, org_id = await seed(server, f"http://127.0.0.1:{port}/hook")
        await call("POST", server.base + "/orgs/acme/projects/WEB/issues", token,
                   {"title": "survives a crash"})  # fmt: skip
        readable, _, _ = await asyncio.to_thread(select.select, [mute], [], [], 10)
        assert readable, "the server never tried to deliver"
        server.kill()  # the POST is in the receiver's queue, unanswered
    finally:
        mute.close()
    ((delivery_id, status, attempts),) = stored_deliveries(server, org_id)
    assert (status, attempts) == ("pending", 0)  # the outbox row survived the crash
    receiver = await Receiver(port=port).start()
    try:
        await server.start()
        (got,) = await receiver.wait_for(1)
        await asyncio.sleep(1.0)  # anything sent twice would have arrived by now
        assert len(receiver.received) == 1 and got.delivery == delivery_id
    finally:
        server.stop()
        await receiver.stop()
    assert stored_deliveries(server, org_id) == [(delivery_id, "delivered", 1)]


async def test_killed_while_receiver_is_slow_resends_the_same_id(server: Server) -> None:
    receiver = Receiver(port=free_port())
    release = asyncio.Event()

    async def hold(request: web.Request) -> web.StreamResponse | None:
        if not release.is_set():
            await asyncio.wait_for(release.wait(), 60)
        return None

    receiver.on_request = hold
    await receiver.start()
    try:
        await server.start()
        token, org_id = await seed(server, receiver.url)
        await call("POST", server.base + "/orgs/acme/projects/WEB/issues", token,
                   {"title": "slow"})  # fmt: skip
        (first,) = await receiver.wait_for(1)
        server.kill()  # while the receiver still holds the request
        release.set()  # the held request's client is gone; later ones are answered at once
        started = time.monotonic()
        await server.start()
        received = await receiver.wait_for(2)
        assert time.monotonic() - started < 15
    finally:
        server.stop()
        await receiver.stop()
    assert {r.delivery for r in received} == {first.delivery}  # dedupe by delivery id
    assert [row[1] for row in stored_deliveries(server, org_id)] == ["delivered"]
