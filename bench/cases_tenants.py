"""Tenants: a read spread over 2,000 orgs (open-tenant cap 256) vs the same read on one org.

Two parts:

* the harness case ``org-read`` (``python -m bench run org-read``): plain aiohttp
  JSON vs ``GET /api/v1/orgs/{org}/projects`` on one org — the price of auth,
  the org directory lookup and a tenant read;
* ``python -m bench.cases_tenants`` — what the harness cannot express (one
  request repeated): 2,000 orgs created through the API, then the same
  authenticated read spread uniformly over all of them (each request a random
  org, so ~87 % of requests find their tenant closed and the LRU must evict
  and open), alternating round by round with the read against a single org.
  It prints req/s and p99 of both, their ratio against the goal (spread >= 70 %
  of single), and the peak number of open file descriptors of the server
  process (sampled from /proc/<pid>/fd), which must stay bounded by the cap.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiosqlite
from aiohttp import web

from bench.api import Api, register_and_login
from bench.baselines import DB_KEY, baseline
from bench.cases import Request, case
from bench.load import Driver, Result, check, pick_driver
from bench.pyload import Histogram
from bench.servers import Server, free_port, rhythm_server
from bench.wrk import DONE, MARK, lua_str, parse
from tracker.domain.ids import is_uuid
from tracker.storage.pool import FDS_PER_TENANT

GOAL = 0.70


@baseline("projects_read")
def projects_read(db_path: Path) -> web.Application:
    """GET / -> the projects of one tenant-like file: one aiosqlite query, no auth."""

    async def handle(request: web.Request) -> web.Response:
        cursor = await request.app[DB_KEY].execute(
            "SELECT id, key, name, description, visibility FROM projects "
            "WHERE deleted_at IS NULL ORDER BY key"
        )
        return web.json_response({"items": [dict(r) for r in await cursor.fetchall()]})

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiosqlite.connect(db_path, isolation_level=None) as db:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(
                "CREATE TABLE IF NOT EXISTS projects (id TEXT PRIMARY KEY, key TEXT, name TEXT,"
                " description TEXT, visibility TEXT, deleted_at TEXT)"
            )
            await db.execute(
                "INSERT OR IGNORE INTO projects VALUES ('p1', 'WEB', 'Web', '', 'org', NULL)"
            )
            app[DB_KEY] = db
            yield

    app = web.Application()
    app.cleanup_ctx.append(ctx)
    app.router.add_get("/", handle)
    return app


@case("org-read", baseline="projects_read", request=Request("GET", "/"), goal=0.50)
async def org_read(api: Api) -> Request:
    """aiosqlite projects read vs GET /api/v1/orgs/{org}/projects (auth + directory + read)"""
    token = await register_and_login(api)
    org = await api.call("POST", "/api/v1/orgs", json={"name": "Bench"}, token=token, expect=201)
    body = {"name": "Web", "key": "WEB"}
    await api.call("POST", f"/api/v1/orgs/{org['slug']}/projects", json=body, token=token,
                   expect=201)  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    return Request("GET", f"/api/v1/orgs/{org['slug']}/projects", auth)


# --- the spread benchmark --------------------------------------------------------


async def create_orgs(api: Api, token: str, count: int, parallel: int = 8) -> list[str]:
    """`count` orgs through the API, `parallel` at a time; returns their slugs."""
    slugs = [f"t{i:05d}" for i in range(count)]
    queue = iter(slugs)

    async def worker() -> None:
        for slug in queue:
            await api.call("POST", "/api/v1/orgs", json={"name": slug, "slug": slug},
                           token=token, expect=201)  # fmt: skip

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return slugs


def spread_script(paths: list[str], headers: dict[str, str]) -> str:
    """A wrk script sending GET to a uniformly random path of `paths` per request."""
    lines = [f"MARK = {lua_str(MARK)}", 'wrk.method = "GET"']
    lines += [f"wrk.headers[{lua_str(k)}] = {lua_str(v)}" for k, v in headers.items()]
    lines.append("paths = {" + ",".join(lua_str(p) for p in paths) + "}")
    lines.append("request = function() return wrk.format(nil, paths[math.random(#paths)]) end")
    return "\n".join([*lines, DONE])


async def wrk_spread(
    wrk: str, url: str, paths: list[str], headers: dict[str, str], seconds: float, conns: int
) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(spread_script(paths, headers))
        lua.flush()
        argv = [wrk, "-t", "1", "-c", str(conns), "-d", f"{seconds:g}s", "--timeout", "10s",
                "-s", lua.name, url + paths[0]]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
    return parse(out.decode(errors="replace"))


async def python_spread(
    url: str, paths: list[str], headers: dict[str, str], seconds: float, conns: int
) -> Result:
    """The fallback driver with a random path per request."""
    hist, errors = Histogram(), [0]
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=conns)) as s:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while (sent := time.perf_counter()) < deadline:
                async with s.get(random.choice(paths), headers=headers) as resp:
                    await resp.read()
                    errors[0] += resp.status != 200
                hist.add(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.perf_counter() - start
    return Result(hist.total, errors[0], elapsed, hist.percentile(50), hist.percentile(99))


class FdSampler:
    """Samples the open descriptors of one process every 20 ms; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.path, self.peak, self._task = Path(f"/proc/{pid}/fd"), 0, None

    def count(self) -> int:
        try:
            return len(os.listdir(self.path))
        except OSError:
            return 0

    async def _run(self) -> None:
        while True:
            self.peak = max(self.peak, self.count())
            await asyncio.sleep(0.02)

    def __enter__(self) -> FdSampler:
        self._task = asyncio.get_running_loop().create_task(self._run())  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


def summary(label: str, results: list[Result]) -> str:
    rps = statistics.median(r.rps for r in results)
    p99 = statistics.median(r.p99_ms for r in results)
    errors = sum(r.errors for r in results)
    return f"{label:<28} {rps:>10,.0f} req/s   p99 {p99:>7.2f} ms   errors {errors}"


async def run(args: argparse.Namespace) -> int:
    os.environ["RHYTHM_MAX_OPEN_TENANTS"] = str(args.cap)
    driver = pick_driver(args.driver, args.connections, 1)
    with tempfile.TemporaryDirectory(prefix="rhythm-bench-tenants-") as tmp:
        async with rhythm_server(Path(tmp)) as server, aiohttp.ClientSession() as session:
            assert server.proc is not None
            api = Api(session, server.url)
            token = await register_and_login(api)
            started = time.perf_counter()
            slugs = await create_orgs(api, token, args.orgs)
            took = time.perf_counter() - started
            print(f"created {len(slugs)} orgs through the API in {took:.1f} s "
                  f"({len(slugs) / took:,.0f}/s)", flush=True)  # fmt: skip
            headers = {"Authorization": f"Bearer {token}"}
            paths = [f"/api/v1/orgs/{slug}/projects" for slug in slugs]
            single = Request("GET", paths[0], headers)
            await check(server.url, single)
            fds = FdSampler(server.proc.pid)
            idle_fds = fds.count()
            one, spread = [], []
            with fds:
                for n in range(args.rounds):
                    one.append(await driver.run(server.url, single, args.seconds))
                    spread.append(await _spread(driver.name, server.url, paths, headers, args))
                    print(f"round {n + 1}/{args.rounds}: single {one[-1].rps:,.0f} req/s, "
                          f"spread {spread[-1].rps:,.0f} req/s, peak fds {fds.peak}",
                          file=sys.stderr, flush=True)  # fmt: skip
        # The same spread on the same files through the raw stack, Rhythm stopped.
        raw_one, raw_spread = await _raw_rounds(driver, Path(tmp), args)
    report(args, one, spread, idle_fds, fds.peak)
    return report_raw(args, one, spread, raw_one, raw_spread)


async def _raw_rounds(
    driver: Driver, tmp: Path, args: argparse.Namespace
) -> tuple[list[Result], list[Result]]:
    data = tmp / "rhythm-data"
    org_ids = sorted(p.name for p in data.iterdir() if p.is_dir() and is_uuid(p.name))
    port = free_port()
    argv = [sys.executable, "-m", "bench.raw_tenants", "--data-dir", str(data),
            "--cap", str(args.cap), "--port", str(port)]  # fmt: skip
    one, spread = [], []
    async with Server("raw sqlite3", argv, "/health", port, tmp / "raw.log") as raw:
        paths = [f"/t/{org_id}" for org_id in org_ids]
        single = Request("GET", paths[0], {})
        await check(raw.url, single)
        for n in range(args.rounds):
            one.append(await driver.run(raw.url, single, args.seconds))
            spread.append(await _spread(driver.name, raw.url, paths, {}, args))
            print(f"raw round {n + 1}/{args.rounds}: single {one[-1].rps:,.0f} req/s, "
                  f"spread {spread[-1].rps:,.0f} req/s", file=sys.stderr, flush=True)  # fmt: skip
    return one, spread


async def _spread(
    driver: str, url: str, paths: list[str], headers: dict[str, str], args: argparse.Namespace
) -> Result:
    import shutil

    wrk = shutil.which("wrk")
    if driver.startswith("wrk") and wrk:
        return await wrk_spread(wrk, url, paths, headers, args.seconds, args.connections)
    return await python_spread(url, paths, headers, args.seconds, args.connections)


def report(
    args: argparse.Namespace, one: list[Result], spread: list[Result], idle: int, peak: int
) -> int:
    ratios = [s.rps / o.rps for o, s in zip(one, spread, strict=True) if o.rps]
    ratio = statistics.median(ratios)
    # A leased tenant is never closed under a request, so while `connections`
    # requests run, up to that many tenants can be open beyond the cap.
    bound = (args.cap + args.connections) * FDS_PER_TENANT + args.connections + 64
    print(f"\nreads spread over {args.orgs} orgs, open-tenant cap {args.cap}, "
          f"{args.connections} connections, {args.rounds} x {args.seconds} s")  # fmt: skip
    print(summary("GET .../projects, one org", one))
    print(summary(f"GET .../projects, {args.orgs} orgs", spread))
    verdict = "OK" if ratio >= GOAL else "MISS"
    print(f"spread/single: {ratio:.0%} (goal >= {GOAL:.0%}) {verdict}")
    fd_verdict = "OK" if peak <= bound else "MISS"
    print(f"open fds: {idle} after setup, peak {peak} under load "
          f"(bound: (cap + connections) x {FDS_PER_TENANT} + connections + 64 = {bound}) "
          f"{fd_verdict}")  # fmt: skip
    return 0


def report_raw(
    args: argparse.Namespace,
    one: list[Result],
    spread: list[Result],
    raw_one: list[Result],
    raw_spread: list[Result],
) -> int:
    """What spreading costs the raw stack (plain aiohttp + sqlite3 inline, same files)."""

    def median_rps(results: list[Result]) -> float:
        return statistics.median(r.rps for r in results)

    raw_ratio = statistics.median(s.rps / o.rps for o, s in zip(raw_one, raw_spread, strict=True))
    ratio = statistics.median(s.rps / o.rps for o, s in zip(one, spread, strict=True))
    print(f"\nraw stack (plain aiohttp + sqlite3 inline, same {args.orgs} files, cap {args.cap}):")
    print(summary("raw read, one tenant", raw_one))
    print(summary(f"raw read, {args.orgs} tenants", raw_spread))
    print(
        f"raw spread/single: {raw_ratio:.0%}; Rhythm spread/single: {ratio:.0%}; "
        f"Rhythm spread vs raw spread: {median_rps(spread) / median_rps(raw_spread):.0%}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_tenants", description=__doc__)
    parser.add_argument("--orgs", type=int, default=2000)
    parser.add_argument("--cap", type=int, default=256, help="RHYTHM_MAX_OPEN_TENANTS")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
