"""Shutdown of a real `rhythm serve` process with 100 open WebSockets: 1001 for all, prompt exit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import WSMsgType

from tests.test_contract import ROOT, free_port

SOCKETS = 100
#: `rhythm serve` waits up to 30 s for handlers; the sockets must not make it wait.
GRACE = 10.0


async def test_shutdown_closes_100_sockets_with_1001_and_exits_promptly(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ, "RHYTHM_LOG_LEVEL": "warning", "RHYTHM_ARGON2_TIME_COST": "1",
        "RHYTHM_ARGON2_MEMORY_KIB": "8192", "RHYTHM_WS_MAX_PER_USER": str(SOCKETS),
    }  # fmt: skip
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(tmp_path / "data"),
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(base + "/health/live") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            account = {"email": "shut@example.com", "password": "correct horse"}
            await (await http.post(base + "/auth/register", json=account)).read()
            tokens = await (await http.post(base + "/auth/login", json=account)).json()
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            org = await (await http.post(base + "/orgs", json={"name": "Shut"},
                                         headers=headers)).json()  # fmt: skip
            sockets = [await http.ws_connect(f"{base}/orgs/{org['slug']}/ws", headers=headers)
                       for _ in range(SOCKETS)]  # fmt: skip
            for ws in sockets:
                assert (await ws.receive_json(timeout=10))["type"] == "hello"
            started = time.monotonic()
            process.terminate()

            async def close_of(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
                msg = await ws.receive(timeout=GRACE)
                assert msg.type is WSMsgType.CLOSE, msg
                return ws.close_code, str(msg.extra)

            closes = await asyncio.gather(*(close_of(ws) for ws in sockets))
            assert set(closes) == {(1001, "server shutting down")}
            for ws in sockets:
                await ws.close()
        returncode = await asyncio.to_thread(process.wait, GRACE)
        assert time.monotonic() - started < GRACE
        assert returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
    assert "Traceback" not in (tmp_path / "server.log").read_text()
