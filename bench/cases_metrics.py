"""Metrics overhead: the same Rhythm with /metrics on vs off, same run, alternating rounds.

    python -m bench.cases_metrics --rounds 7 --seconds 5

Two `rhythm serve` processes on fresh data dirs, one with RHYTHM_METRICS=false and
RHYTHM_SLOW_REQUEST_MS=0 (no observing middleware at all), one with the defaults
(metrics on, slow-request log at 1 s). wrk loads each in turn, A B A B …; the
figure is the median of the per-round ratios on/off (goal: >= 95 % on the health
route). Because this box is shared and noisy, it also times the observing middleware
in-process (a real app's resolved health request, the middleware around a trivial
handler vs the handler alone, best of 5 runs of 200k) and prints that cost as a share of
one health request at the measured "off" rate. `--route me` measures an
authenticated `GET /api/v1/users/me` instead, with the rate limiter also on (a
limit too high to refuse anything), so the limiter's own per-request cost shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp

from bench.api import Api, register_and_login
from bench.cases import Request
from bench.load import Driver, Result, check, pick_driver
from bench.servers import Server, rhythm_server
from tracker.http.clients import ClientAddresses
from tracker.http.front import front
from tracker.http.keys import Lifecycle
from tracker.http.metrics import Observer, RequestStats

HEALTH = Request("GET", "/api/v1/health/live")
OFF = {"RHYTHM_METRICS": "false", "RHYTHM_SLOW_REQUEST_MS": "0"}
ON_HEALTH: dict[str, str] = {}
ON_ME = {"RHYTHM_RATE_LIMIT_RPS": "1000000", "RHYTHM_RATE_LIMIT_BURST": "1000000"}


async def request_for(server: Server, route: str) -> Request:
    if route == "health":
        return HEALTH
    async with aiohttp.ClientSession() as session:
        token = await register_and_login(Api(session, server.url))
    return Request("GET", "/api/v1/users/me", {"Authorization": f"Bearer {token}"})


async def measure(
    route: str, rounds: int, seconds: int, driver: Driver
) -> tuple[list[float], float]:
    """Per-round on/off ratios, and the median req/s with metrics off."""
    with tempfile.TemporaryDirectory(prefix="rhythm-bench-metrics-") as tmp:
        async with AsyncExitStack() as stack:
            on_env = ON_HEALTH if route == "health" else ON_ME
            off = await stack.enter_async_context(rhythm_server(Path(tmp), OFF, "off"))
            on = await stack.enter_async_context(rhythm_server(Path(tmp), on_env, "on"))
            sides = [(off, await request_for(off, route)), (on, await request_for(on, route))]
            for server, req in sides:
                await check(server.url, req)
                await driver.run(server.url, req, 1)  # warm-up
            ratios, off_rates = [], []
            for n in range(rounds):
                results: list[Result] = []
                for server, req in sides if n % 2 == 0 else sides[::-1]:
                    results.append(await driver.run(server.url, req, seconds))
                off_r, on_r = results if n % 2 == 0 else results[::-1]
                ratios.append(on_r.rps / off_r.rps)
                off_rates.append(off_r.rps)
                print(
                    f"round {n + 1}: off {off_r.rps:8.0f} req/s p99 {off_r.p99_ms:5.1f} ms | "
                    f"on {on_r.rps:8.0f} req/s p99 {on_r.p99_ms:5.1f} ms | "
                    f"ratio {ratios[-1]:.1%}",
                    flush=True,
                )
    return ratios, statistics.median(off_rates)


async def middleware_cost_us(n: int = 200_000, tries: int = 5) -> float:
    """µs the observer step of the front layer adds to one request (in-process, best of
    `tries`): the front with an Observer against the front without one."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"{}")

    app = web.Application()
    app.router.add_get(HEALTH.path, handler)
    request = make_mocked_request("GET", HEALTH.path, app=app)
    request._match_info = await app.router.resolve(request)
    bare_front = front(Lifecycle())
    middleware = front(Lifecycle(), Observer(RequestStats(), 1000, ClientAddresses(())))
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        for _ in range(n):
            await bare_front(request, handler)
        bare = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(n):
            await middleware(request, handler)
        best = min(best, (time.perf_counter() - started - bare) / n * 1e6)
    return best


async def limiter_cost_us(n: int = 100_000, tries: int = 5) -> float:
    """µs the rate limiter adds to one authenticated request (in-process, best of `tries`):
    the user read from a verified-token cache hit, a bucket take, two headers."""
    from types import SimpleNamespace

    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from tracker.auth.tokens import TokenCodec
    from tracker.http.keys import CORE
    from tracker.http.ratelimit import Limiter, TokenBuckets

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"{}")

    codec = TokenCodec("x" * 40)
    token, _ = codec.issue_access("user-1", 0)
    app = web.Application()
    app[CORE] = SimpleNamespace(tokens=codec)  # type: ignore[misc]  # only .tokens is read
    app.router.add_get("/api/v1/users/me", handler)
    headers = {"Authorization": f"Bearer {token}"}
    request = make_mocked_request("GET", "/api/v1/users/me", headers=headers, app=app)
    match_info = await app.router.resolve(request)
    match_info.add_app(app)
    match_info.current_app = app
    request._match_info = match_info
    bare_front = front(Lifecycle())
    buckets = TokenBuckets(1e9, 10**9)
    limiter = front(Lifecycle(), limiter=Limiter(1e9, 10**9, ClientAddresses(()), buckets))
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        for _ in range(n):
            await bare_front(request, handler)
        bare = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(n):
            await limiter(request, handler)
        best = min(best, (time.perf_counter() - started - bare) / n * 1e6)
    return best


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--route", choices=["health", "me"], default="health")
    args = parser.parse_args()
    driver = pick_driver("auto", args.connections, 1)
    load = os.getloadavg()
    print(f"driver {driver.name}, route {args.route}, load average {load[0]:.2f}", flush=True)
    ratios, off_rps = await measure(args.route, args.rounds, args.seconds, driver)
    cost = await middleware_cost_us()
    share = cost * off_rps / 1e6
    print(f"in-process: the observing middleware adds {cost:.2f} µs per request = "
          f"{share:.2%} of one request at the median off rate ({off_rps:.0f} req/s)")  # fmt: skip
    if args.route == "me":
        limiter = await limiter_cost_us()
        print(f"in-process: the rate limiter adds {limiter:.2f} µs per request = "
              f"{limiter * off_rps / 1e6:.2%} of one request at that rate")  # fmt: skip
    median = statistics.median(ratios)
    goal = "met" if median >= 0.95 else "MISSED"
    print(f"median on/off ratio {median:.1%} over {len(ratios)} rounds (goal >= 95 %: {goal}); "
          f"load average now {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
