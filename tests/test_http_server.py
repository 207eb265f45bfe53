"""Items 3, 4, 6: the server `rhythm serve` runs, tested over real sockets.

Graceful shutdown answers keep-alive requests 503 + Connection: close (nothing
applied); half-sent requests and idle connections are closed after
RHYTHM_IDLE_TIMEOUT; over-long URLs and headers are 414/431 problem details
with one rate-limited warning line and no traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tracker.http.app import create_app
from tracker.http.server import RhythmRunner
from tracker.settings import Settings


class Served:
    def __init__(self, runner: RhythmRunner, port: int, settings: Settings) -> None:
        self.runner, self.port, self.settings = runner, port, settings

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def start(settings: Settings, **kwargs: Any) -> Served:
    runner = RhythmRunner(create_app(settings), keepalive_timeout=settings.idle_timeout, **kwargs)
    await runner.setup()
    from aiohttp import web

    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return Served(runner, port, settings)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    server = await start(make_settings(tmp_path / "data", idle_timeout=0.5))
    yield server
    await server.runner.cleanup()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


def request(method: str, path: str, body: Any = None, token: str | None = None) -> bytes:
    data = b"" if body is None else json.dumps(body).encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(data)}\r\n"
    if body is not None:
        head += "Content-Type: application/json\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    return head.encode() + b"\r\n" + data


async def call(server: Served, method: str, path: str, body: Any = None,
               token: str | None = None) -> tuple[int, dict[str, str], Any]:  # fmt: skip
    reader, writer = await server.connect()
    writer.write(request(method, "/api/v1" + path, body, token))
    status, headers, raw = await read_response(reader)
    writer.close()
    return status, headers, json.loads(raw) if raw else None


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# -- item 4: header-read timeout and idle connections ---------------------------------------


async def test_half_sent_requests_and_idle_connections_are_closed(served: Served) -> None:
    half_open = []
    for n in range(100):
        reader, writer = await served.connect()
        writer.write(
            b"GET /api/v1/health/li" if n % 2 else b"GET /api/v1/health/live HTTP/1.1\r\nX"
        )
        half_open.append((reader, writer))
    reader, writer = await served.connect()  # a complete request, then idle keep-alive
    writer.write(request("GET", "/api/v1/health/live"))
    assert (await read_response(reader))[0] == 200
    status, _, _ = await call(served, "GET", "/health/live")  # still served meanwhile
    assert status == 200
    results = await asyncio.gather(*(closed_by_server(r, 3) for r, _ in half_open))
    assert all(results)
    assert await closed_by_server(reader, 3)
    writer.close()
    assert len(served.runner.server.connections) == 0  # type: ignore[union-attr]
    for _, w in half_open:
        w.close()


async def test_slowloris_trickling_headers_is_cut_off(served: Served) -> None:
    """Checklist 68: a byte every 0.1 s keeps no connection alive past the idle bound."""
    line = b"GET /api/v1/health/live HTTP/1.1\r\nX-Slow: " + b"a" * 100

    async def trickle() -> float:
        reader, writer = await served.connect()
        began = time.monotonic()
        try:
            for byte in line:
                writer.write(bytes([byte]))
                await writer.drain()
                if reader.at_eof():
                    break
                await asyncio.sleep(0.1)
            assert await closed_by_server(reader, 3)
        except ConnectionError:
            pass
        finally:
            writer.close()
        return time.monotonic() - began

    slow = [asyncio.create_task(trickle()) for _ in range(200)]
    await asyncio.sleep(0.3)
    assert (await call(served, "GET", "/health/live"))[0] == 200  # still served
    durations = await asyncio.gather(*slow)
    assert max(durations) < 3.5  # idle_timeout 0.5 s, not the 10 s the trickle would take
    assert len(served.runner.server.connections) == 0  # type: ignore[union-attr]


# -- item 6: oversized URLs and headers ------------------------------------------------------


async def test_oversized_url_and_headers_are_problem_details_and_one_warning(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    cases = [
        (b"GET /api/v1/health/live?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET /api/v1/health/live HTTP/1.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"GET /api/v1/health/live HTTP/1.1\r\n"
         + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n", 431),
    ]  # fmt: skip
    with caplog.at_level(logging.WARNING):
        for n in range(30):
            raw, expected = cases[n % 3]
            reader, writer = await served.connect()
            writer.write(raw)
            status, headers, body = await read_response(reader)
            assert status == expected
            assert headers["content-type"].startswith("application/problem+json")
            problem = json.loads(body)
            assert problem["status"] == expected and problem["request_id"]
            assert await closed_by_server(reader, 2)
            writer.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "malformed request" in warnings[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


# -- item 3: graceful shutdown ----------------------------------------------------------------


async def test_keep_alive_requests_during_shutdown_get_503_and_nothing_applies(
    tmp_path: Path,
) -> None:
    server = await start(make_settings(tmp_path / "data", idle_timeout=30), drain_seconds=3)
    user = {"email": "ann@example.com", "password": "correct horse"}
    assert (await call(server, "POST", "/auth/register", user))[0] == 201
    token = (await call(server, "POST", "/auth/login", user))[2]["access_token"]
    status, _, org = await call(server, "POST", "/orgs", {"name": "Acme"}, token)
    assert status == 201
    assert (await call(server, "POST", "/orgs/acme/projects", {"name": "W", "key": "WEB"},
                       token))[0] == 201  # fmt: skip

    clients = [await server.connect() for _ in range(5)]
    for reader, writer in clients:  # each connection is kept alive after one request
        writer.write(request("GET", "/api/v1/users/me", token=token))
        status, headers, _ = await read_response(reader)
        assert status == 200 and headers.get("connection", "").lower() != "close"

    shutdown = asyncio.create_task(server.runner.cleanup())
    await asyncio.sleep(0.2)  # the listening socket is closed, connections drain
    assert not shutdown.done()
    for reader, writer in clients:
        body = {"title": "during shutdown"}
        writer.write(request("POST", "/api/v1/orgs/acme/projects/WEB/issues", body, token))
        status, headers, raw = await read_response(reader)
        assert status == 503, raw
        assert headers["connection"].lower() == "close"
        assert headers["content-type"].startswith("application/problem+json")
        assert int(headers["retry-after"]) >= 1
        assert await closed_by_server(reader, 2)
        writer.close()
    await asyncio.wait_for(shutdown, 10)  # every connection went: no need to wait 3 s
    conn = sqlite3.connect(tmp_path / "data" / org["id"] / "tracker.db")
    assert conn.execute("SELECT count(*) FROM issues").fetchone()[0] == 0
    conn.close()
