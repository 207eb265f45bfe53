"""A real webhook receiver for tests: an aiohttp server on 127.0.0.1 that records requests.

`answers` is a list of statuses consumed one per request (then 200); `delay`
holds each answer back; `port` can be fixed so a receiver "comes back" on the
same address after being down.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def delivery(self) -> str:
        return self.headers["X-Rhythm-Delivery"]


@dataclass
class Receiver:
    port: int = 0
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    runner: web.AppRunner | None = None
    on_request: Any = None
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A test receiver never holds a teardown for aiohttp's default 60 s wait on
        # connections still open (a sender's keep-alive or a request just arriving).
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self.closing.set()  # held answers end now, not after their whole delay
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(time.monotonic(), request.path, dict(request.headers), body))
        if self.on_request is not None:
            result = await self.on_request(request)
            if result is not None:
                return result  # type: ignore[no-any-return]
        if self.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.delay)
        status = self.answers.pop(0) if self.answers else 200
        return web.Response(status=status, text=f"answer {status}")

    async def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} arrived"
            await asyncio.sleep(0.01)
        return self.received


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver-side check, exactly as the README shows it."""
    signed = headers["X-Rhythm-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-Rhythm-Signature"])
