"""Load drivers: wrk when installed, else an in-process aiohttp client."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from bench.cases import Request


@dataclass(frozen=True)
class Result:
    """One timed load run against one server."""

    requests: int
    errors: int  # connection errors plus responses other than the expected status
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class Driver(Protocol):
    """Repeats one request from ``connections`` connections for ``seconds``."""

    name: str

    async def run(self, base_url: str, req: Request, seconds: float) -> Result: ...


def pick_driver(choice: str, connections: int, threads: int) -> Driver:
    """``wrk`` if asked or (for ``auto``) installed, else the Python client."""
    from bench.pyload import PythonDriver
    from bench.wrk import WrkDriver

    wrk = shutil.which("wrk")
    if choice == "wrk" and not wrk:
        raise SystemExit("--driver wrk: wrk is not on PATH (apt-get install wrk)")
    if choice in ("wrk", "auto") and wrk:
        return WrkDriver(wrk, connections, threads)
    return PythonDriver(connections)


async def check(base_url: str, req: Request) -> None:
    """Send ``req`` once and fail loudly unless it gets the expected status.

    Without this a wrong token would be benchmarked as a very fast 401.
    """
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            req.method, base_url + req.path, headers=dict(req.headers), data=req.render_body(0)
        ) as resp,
    ):
        text = await resp.text()
        if resp.status != req.expect:
            raise RuntimeError(
                f"{req.method} {req.path}: {resp.status} (want {req.expect}): {text[:300]}"
            )
