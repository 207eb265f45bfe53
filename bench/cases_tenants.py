"""Tenants: a read spread over 10,000 orgs vs the same read on one org; the idle cost.

Three parts:

* the harness case ``org-read`` (``python -m bench run org-read``): plain aiohttp
  JSON vs ``GET /api/v1/orgs/{org}/projects`` on one org — the price of auth,
  the org directory lookup and a tenant read;
* ``python -m bench.cases_tenants [--pattern zipf|uniform]`` — what the harness
  cannot express (one request repeated): 10,000 orgs (copies of one migrated
  template file plus their directory rows, see bench/tenant_seed.py: creating
  them through the API would take minutes), then the same authenticated read
  spread over all of them, each request's org drawn from a Zipf law (rank k
  with weight k^-s, s = 1.1 by default; ranks shuffled over the orgs) or
  uniformly, alternating round by round with the read against a single org.
  Before the rounds every org is read once (steady state: a running server
  has its org directory cached; ``--no-warm`` skips it). It prints req/s and
  p99 of both, their ratio against the goal (spread >= 70 % of single), the
  LRU miss rate the pattern implies at the cap, and the peak
  number of open file descriptors of the server process (sampled from
  /proc/<pid>/fd), which must stay bounded by the cap. The raw stack
  (bench/raw_tenants.py) runs the same rounds over a copy of the same files at
  the same time: both servers are up and the rounds take turns, so the
  Rhythm/raw ratio compares the same moments of a shared box.
* ``--idle``: the idle cost — RSS, threads and fds of a fresh server with all
  the orgs created, before and after 256 of them were opened (cap 256), for
  Rhythm and for the raw stack.

``--cap`` unset means the server's default (RHYTHM_MAX_OPEN_TENANTS); the raw
stack then gets the same number.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import itertools
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
from bench.tenant_seed import seed
from bench.wrk import DONE, MARK, lua_str, parse
from tracker.settings import Settings
from tracker.storage.pool import FDS_PER_TENANT, MAX_CLOSING

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


class Pattern:
    """Which org each request reads: uniform, or Zipf over ranks shuffled across the orgs."""

    def __init__(self, name: str, paths: list[str], s: float) -> None:
        self.name, self.paths, self.s = name, paths, s
        self.cum: list[float] | None = None
        if name == "zipf":
            weights = [k**-s for k in range(1, len(paths) + 1)]
            total = sum(weights)
            self.cum = [c / total for c in itertools.accumulate(weights)]
            self.cum[-1] = 1.0

    def with_paths(self, paths: list[str]) -> Pattern:
        """The same law over other URLs of the same orgs (rank i keeps org i)."""
        return Pattern(self.name, paths, self.s)

    def draw(self, rng: random.Random) -> str:
        if self.cum is None:
            return rng.choice(self.paths)
        return self.paths[bisect.bisect_left(self.cum, rng.random())]

    def label(self) -> str:
        return f"Zipf s={self.s:g}" if self.cum is not None else "uniform"

    def lru_miss_rate(self, cap: int, draws: int = 200_000) -> float:
        """The miss rate an LRU of `cap` tenants sees under this law (simulated)."""
        rng, lru, misses = random.Random(7), dict[str, None](), 0
        for n in range(draws):
            path = self.draw(rng)
            if path in lru:
                del lru[path]
            else:
                misses += n >= draws // 4  # the first quarter warms the LRU up
                if len(lru) >= cap:
                    del lru[next(iter(lru))]
            lru[path] = None
        return misses / (draws - draws // 4)


def spread_script(pattern: Pattern, headers: dict[str, str]) -> str:
    """A wrk script sending GET to one path per request, drawn by `pattern`."""
    lines = [f"MARK = {lua_str(MARK)}", 'wrk.method = "GET"']
    lines += [f"wrk.headers[{lua_str(k)}] = {lua_str(v)}" for k, v in headers.items()]
    lines.append("paths = {" + ",".join(lua_str(p) for p in pattern.paths) + "}")
    if pattern.cum is None:
        lines.append("request = function() return wrk.format(nil, paths[math.random(#paths)]) end")
    else:
        lines.append("cum = {" + ",".join(repr(c) for c in pattern.cum) + "}")
        lines.append(ZIPF_REQUEST)
    return "\n".join([*lines, DONE])


# Binary search of a uniform draw in the cumulative probabilities: rank lo.
ZIPF_REQUEST = """
request = function()
  local r, lo, hi = math.random(), 1, #cum
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cum[mid] < r then lo = mid + 1 else hi = mid end
  end
  return wrk.format(nil, paths[lo])
end
"""


async def wrk_spread(
    wrk: str, url: str, pattern: Pattern, headers: dict[str, str], seconds: float, conns: int
) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(spread_script(pattern, headers))
        lua.flush()
        argv = [wrk, "-t", "1", "-c", str(conns), "-d", f"{seconds:g}s", "--timeout", "10s",
                "-s", lua.name, url + pattern.paths[0]]  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
    return parse(out.decode(errors="replace"))


async def python_spread(
    url: str, pattern: Pattern, headers: dict[str, str], seconds: float, conns: int
) -> Result:
    """The fallback driver with a path per request drawn by `pattern`."""
    hist, errors, rng = Histogram(), [0], random.Random(11)
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=conns)) as s:
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while (sent := time.perf_counter()) < deadline:
                async with s.get(pattern.draw(rng), headers=headers) as resp:
                    await resp.read()
                    errors[0] += resp.status != 200
                hist.add(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(conns)))
        elapsed = time.perf_counter() - start
    return Result(hist.total, errors[0], elapsed, hist.percentile(50), hist.percentile(99))


class LruGuess:
    """Whether a request was a hit or a miss of the server's LRU, guessed by simulating an
    LRU of the same cap over the requests in the order this client sends them (the
    server sees them in nearly that order; a miss also counts while its open runs)."""

    def __init__(self, cap: int) -> None:
        self.cap, self.lru = cap, dict[str, None]()

    def miss(self, path: str) -> bool:
        if path in self.lru:
            del self.lru[path]
            self.lru[path] = None
            return False
        self.lru[path] = None
        if len(self.lru) > self.cap:
            del self.lru[next(iter(self.lru))]
        return True


async def split_spread(
    url: str, pattern: Pattern, headers: dict[str, str], seconds: float, conns: int, cap: int
) -> tuple[Histogram, Histogram]:
    """The python driver's spread round, latencies split into (hits, misses) by `LruGuess`.

    Diagnostic only (the client shares the CPU with the servers): where the tail is.
    Starts with the LRU warmed by as many draws as the cap holds.
    """
    hits, misses, rng, guess = Histogram(), Histogram(), random.Random(13), LruGuess(cap)
    for _ in range(cap * 4):
        guess.miss(pattern.draw(rng))
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=conns)) as s:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while (sent := time.perf_counter()) < deadline:
                path = pattern.draw(rng)
                missed = guess.miss(path)
                async with s.get(path, headers=headers) as resp:
                    await resp.read()
                (misses if missed else hits).add(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(conns)))
    return hits, misses


def split_line(label: str, hits: Histogram, misses: Histogram) -> str:
    total = hits.total + misses.total
    both = Histogram()
    both.counts = hits.counts + misses.counts
    both.total = total
    parts = [f"{label:<7} {total:>6} requests, {misses.total / max(total, 1):.1%} misses"]
    for name, hist in (("all", both), ("hits", hits), ("misses", misses)):
        pcts = "/".join(f"{hist.percentile(p):.1f}" for p in (50, 90, 99))
        parts.append(f"{name} p50/p90/p99 {pcts} ms")
    return "; ".join(parts)


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
    return f"{label:<34} {rps:>10,.0f} req/s   p99 {p99:>7.2f} ms   errors {errors}"


def default_cap() -> int:
    """The server's default RHYTHM_MAX_OPEN_TENANTS."""
    return int(Settings.model_fields["max_open_tenants"].default)


async def run(args: argparse.Namespace) -> int:
    cap = default_cap() if args.cap is None else args.cap
    os.environ.pop("RHYTHM_MAX_OPEN_TENANTS", None)
    if args.cap is not None:
        os.environ["RHYTHM_MAX_OPEN_TENANTS"] = str(args.cap)
    os.environ.setdefault("RHYTHM_ACCESS_TOKEN_TTL", "7200")  # one token for the whole run
    driver = pick_driver(args.driver, args.connections, 1)
    with tempfile.TemporaryDirectory(prefix="rhythm-bench-tenants-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "rhythm-data"
        async with rhythm_server(tmp) as server, aiohttp.ClientSession() as session:
            assert server.proc is not None
            token = await register_and_login(Api(session, server.url))
            started = time.perf_counter()
            orgs = await seed(data, args.orgs, tmp)
            took = time.perf_counter() - started
            print(f"created {len(orgs)} orgs (template copies + directory rows) in {took:.1f} s",
                  flush=True)  # fmt: skip
            headers = {"Authorization": f"Bearer {token}"}
            order = list(range(len(orgs)))
            random.Random(3).shuffle(order)  # which org gets which Zipf rank
            ranked = [orgs[i] for i in order]
            pattern = Pattern(
                args.pattern, [f"/api/v1/orgs/{slug}/projects" for slug, _ in ranked], args.s
            )
            if args.idle:
                return await idle_costs(tmp, server, pattern, ranked, headers, args)
            # The raw stack serves a copy of the same files at the same time, so its
            # rounds interleave with Rhythm's and both see the same moments of the box.
            # A copy, not the same files: Rhythm keeps each tenant's -wal/-shm between
            # opens and the raw stack deletes them on close, so on shared files each
            # side's opens would depend on what the other left behind.
            raw_pattern = pattern.with_paths([f"/t/{org_id}" for _, org_id in ranked])
            async with contextlib.AsyncExitStack() as stack:
                raw_data = "raw-data"
                await asyncio.to_thread(copy_data_dir, data, tmp / raw_data)
                raw = await stack.enter_async_context(raw_server(tmp, cap, raw_data))
                rhythm = Side("rhythm", server, pattern, headers)
                plain = Side("raw", raw, raw_pattern, {})
                sides = [rhythm, plain]
                if args.ab:  # a second Rhythm, other settings, on a copy of the data
                    other = await stack.enter_async_context(ab_server(tmp, data, args.ab))
                    sides.insert(1, Side("rhythm-B", other, pattern, headers))
                await _interleaved(driver, sides, args)
                if args.split:
                    await _split_rounds([rhythm, plain], args, cap)
    miss = pattern.lru_miss_rate(cap)
    report(args, cap, miss, rhythm.one, rhythm.spread, rhythm.idle_fds, rhythm.peak_fds)
    if args.ab:
        report_ab(args, rhythm, sides[1], plain)
    report_raw(args, pattern, rhythm.one, rhythm.spread, plain.one, plain.spread)
    cpu_ratios = [r / w for r, w in zip(rhythm.cpu_per_request, plain.cpu_per_request,
                                         strict=True) if w]  # fmt: skip
    print(f"server CPU per spread request (all threads): Rhythm "
          f"{statistics.median(rhythm.cpu_per_request) * 1e6:,.0f} us, raw "
          f"{statistics.median(plain.cpu_per_request) * 1e6:,.0f} us, Rhythm/raw "
          f"{statistics.median(cpu_ratios):.0%} (rounds "
          f"{', '.join(f'{r:.0%}' for r in cpu_ratios)}); on the event loop's thread: "
          f"Rhythm {statistics.median(rhythm.loop_cpu_per_request) * 1e6:,.0f} us, raw "
          f"{statistics.median(plain.loop_cpu_per_request) * 1e6:,.0f} us")  # fmt: skip
    return 0


def copy_data_dir(src: Path, dst: Path) -> None:
    """A copy of a served data dir for another server, without the running server's
    backup socket (a socket cannot be copied)."""
    shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.sock"))


def ab_server(tmp: Path, data: Path, ab: str) -> Server:
    """`--ab`: Rhythm again with the given environment, on a copy of the seeded data dir
    (one process per data dir), so a change is measured in the same rounds as A and raw.

    The raw stack always has a copy of its own (see `run`): sharing A's folders made A
    slower than an identical B on fresh copies (docs/tenants.md, seventh session)."""
    env = dict(item.split("=", 1) for item in ab.split(","))
    copy_data_dir(data, tmp / "rhythm-b-data")
    server = rhythm_server(tmp, env, label="rhythm-b")
    server.ready_timeout = 900.0
    return server


def report_ab(args: argparse.Namespace, a: Side, b: Side, raw: Side) -> None:
    """B against A and both against raw, per round (the same moments of the box)."""

    def pairs(x: list[Result], y: list[Result]) -> str:
        ratios = [p.rps / q.rps for p, q in zip(x, y, strict=True) if q.rps]
        return f"{statistics.median(ratios):.0%} ({', '.join(f'{r:.0%}' for r in ratios)})"

    cpu = "; ".join(
        f"{side.label} {statistics.median(side.cpu_per_request) * 1e6:,.0f} us"
        for side in (a, b, raw)
    )
    print(f"\nA/B (B = {args.ab}): spread B/A {pairs(b.spread, a.spread)}; single B/A "
          f"{pairs(b.one, a.one)}; spread A/raw {pairs(a.spread, raw.spread)}; spread B/raw "
          f"{pairs(b.spread, raw.spread)}; B p99 "
          f"{statistics.median(r.p99_ms for r in b.spread):.1f} ms vs A "
          f"{statistics.median(r.p99_ms for r in a.spread):.1f} ms; server CPU per spread "
          f"request (median of rounds): {cpu}")  # fmt: skip


@dataclass
class Side:
    """One server under test and what its rounds measured."""

    label: str
    server: Server
    pattern: Pattern
    headers: dict[str, str]
    one: list[Result] = field(default_factory=list)
    spread: list[Result] = field(default_factory=list)
    idle_fds: int = 0
    peak_fds: int = 0
    #: CPU seconds of the server process (all threads) per request of each spread round
    cpu_per_request: list[float] = field(default_factory=list)
    #: ... of its event loop's thread alone
    loop_cpu_per_request: list[float] = field(default_factory=list)


def process_cpu(pid: int, *, main_thread: bool = False) -> float:
    """User + system CPU seconds of a process so far, every thread (from /proc); with
    `main_thread`, of its first thread only (the event loop's, in both servers)."""
    stat = Path(f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _interleaved(driver: Driver, sides: list[Side], args: argparse.Namespace) -> None:
    """Rounds of (the read on one org, then the read spread by the pattern) per side,
    the sides taking turns with the order rotating, so slow moments hit both."""
    samplers = []
    for side in sides:
        assert side.server.proc is not None
        single = Request("GET", side.pattern.paths[0], side.headers)
        await check(side.server.url, single)
        if args.warm:  # steady state: every org was read once (directory cache, page cache)
            started = time.perf_counter()
            await _touch(side.server.url, side.pattern.paths, side.headers)
            print(f"{side.label}: every org read once in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr, flush=True)  # fmt: skip
        samplers.append(FdSampler(side.server.proc.pid))
        side.idle_fds = samplers[-1].count()
    with contextlib.ExitStack() as stack:
        for sampler in samplers:
            stack.enter_context(sampler)
        for n in range(args.rounds):
            turn = list(zip(sides, samplers, strict=True))
            for side, fds in turn if n % 2 == 0 else reversed(turn):
                single = Request("GET", side.pattern.paths[0], side.headers)
                side.one.append(await driver.run(side.server.url, single, args.seconds))
                pid = side.server.proc.pid  # type: ignore[union-attr]
                cpu0, loop0 = process_cpu(pid), process_cpu(pid, main_thread=True)
                side.spread.append(
                    await _spread(driver.name, side.server.url, side.pattern, side.headers, args)
                )
                served = max(side.spread[-1].requests, 1)
                side.cpu_per_request.append((process_cpu(pid) - cpu0) / served)
                loop = process_cpu(pid, main_thread=True) - loop0
                side.loop_cpu_per_request.append(loop / served)
                side.peak_fds = fds.peak
                print(f"{side.label} round {n + 1}/{args.rounds}: single "
                      f"{side.one[-1].rps:,.0f} req/s, {side.pattern.label()} "
                      f"{side.spread[-1].rps:,.0f} req/s p99 {side.spread[-1].p99_ms:.1f} ms "
                      f"{side.cpu_per_request[-1] * 1e6:,.0f} us CPU/req "
                      f"({side.loop_cpu_per_request[-1] * 1e6:,.0f} on the loop), "
                      f"peak fds {fds.peak}, RSS {proc_stats(pid)['rss_kib'] / 1024:,.0f} MiB, "
                      f"load {os.getloadavg()[0]:.1f}",
                      file=sys.stderr, flush=True)  # fmt: skip


async def _split_rounds(sides: list[Side], args: argparse.Namespace, cap: int) -> None:
    """`--split`: one more spread round per side through the python client, its
    latencies split into hits and misses of the LRU (see `split_spread`)."""
    print(f"\nhits vs misses (python client, {args.connections} connections, "
          f"{args.seconds} s per side, cap {cap}):")  # fmt: skip
    for side in sides:
        hits, misses = await split_spread(side.server.url, side.pattern, side.headers,
                                          args.seconds, args.connections, cap)  # fmt: skip
        print(split_line(side.label, hits, misses) + f"; load {os.getloadavg()[0]:.1f}",
              flush=True)  # fmt: skip


def raw_server(tmp: Path, cap: int, data: str) -> Server:
    port = free_port()
    argv = [sys.executable, "-m", "bench.raw_tenants", "--data-dir", str(tmp / data),
            "--cap", str(cap), "--port", str(port)]  # fmt: skip
    return Server("raw sqlite3", argv, "/health", port, tmp / "raw.log")


async def _spread(
    driver: str, url: str, pattern: Pattern, headers: dict[str, str], args: argparse.Namespace
) -> Result:
    wrk = shutil.which("wrk")
    if driver.startswith("wrk") and wrk:
        return await wrk_spread(wrk, url, pattern, headers, args.seconds, args.connections)
    return await python_spread(url, pattern, headers, args.seconds, args.connections)


def report(
    args: argparse.Namespace,
    cap: int,
    miss: float,
    one: list[Result],
    spread: list[Result],
    idle: int,
    peak: int,
) -> int:
    ratios = [s.rps / o.rps for o, s in zip(one, spread, strict=True) if o.rps]
    ratio = statistics.median(ratios)
    # A leased tenant is never closed under a request, so while `connections`
    # requests run, up to that many tenants can be open beyond the cap; and up to
    # MAX_CLOSING evicted ones can still be closing (a miss waits beyond that).
    bound = (cap + args.connections) * FDS_PER_TENANT + args.connections + 64
    bound_closing = bound + MAX_CLOSING * FDS_PER_TENANT
    label = Pattern(args.pattern, ["x"], args.s).label()
    print(f"\nreads over {args.orgs} orgs ({label}), open-tenant cap {cap}"
          f"{' (default)' if args.cap is None else ''}, {args.connections} connections, "
          f"{args.rounds} x {args.seconds} s, LRU miss rate at the cap {miss:.1%}")  # fmt: skip
    print(summary("GET .../projects, one org", one))
    print(summary(f"GET .../projects, {args.orgs} orgs", spread))
    verdict = "OK" if ratio >= GOAL else "MISS"
    print(f"spread/single: {ratio:.0%} (per-round {', '.join(f'{r:.0%}' for r in ratios)}; "
          f"goal >= {GOAL:.0%}) {verdict}")  # fmt: skip
    fd_verdict = "OK" if peak <= bound else "MISS"
    print(f"open fds: {idle} after setup, peak {peak} under load "
          f"(bound: (cap + connections) x {FDS_PER_TENANT} + connections + 64 = {bound}) "
          f"{fd_verdict}; with closes in flight (+ {MAX_CLOSING} x {FDS_PER_TENANT}) "
          f"{bound_closing} {'OK' if peak <= bound_closing else 'MISS'}")  # fmt: skip
    return 0


def report_raw(
    args: argparse.Namespace,
    pattern: Pattern,
    one: list[Result],
    spread: list[Result],
    raw_one: list[Result],
    raw_spread: list[Result],
) -> int:
    """What spreading costs the raw stack (plain aiohttp + sqlite3 inline, same files copied)."""
    raw_ratio = statistics.median(s.rps / o.rps for o, s in zip(raw_one, raw_spread, strict=True))
    ratio = statistics.median(s.rps / o.rps for o, s in zip(one, spread, strict=True))
    vs_raw = [r.rps / w.rps for r, w in zip(spread, raw_spread, strict=True) if w.rps]
    print(f"\nraw stack (aiohttp + sqlite3 inline, copies of the {args.orgs} files, same cap):")
    print(summary("raw read, one tenant", raw_one))
    print(summary(f"raw read, {args.orgs} tenants ({pattern.label()})", raw_spread))
    print(f"raw spread/single: {raw_ratio:.0%}; Rhythm spread/single: {ratio:.0%}; "
          f"Rhythm spread vs raw spread: {statistics.median(vs_raw):.0%} "
          f"(round pairs {', '.join(f'{r:.0%}' for r in vs_raw)})")  # fmt: skip
    return 0


# --- the idle cost ---------------------------------------------------------------


def proc_stats(pid: int) -> dict[str, int]:
    """RSS (KiB), threads and open descriptors of a process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            fields[key] = int(value.split()[0])
    return {"rss_kib": fields["VmRSS"], "threads": fields["Threads"],
            "fds": len(os.listdir(f"/proc/{pid}/fd"))}  # fmt: skip


async def _touch(url: str, paths: list[str], headers: dict[str, str]) -> None:
    """GET every path once, 8 at a time, and insist on 200s."""
    queue = iter(paths)
    async with aiohttp.ClientSession(url) as session:

        async def worker() -> None:
            for path in queue:
                async with session.get(path, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"GET {path}: {resp.status}")

        await asyncio.gather(*(worker() for _ in range(8)))


async def _idle_one(
    server: Server, paths: list[str], headers: dict[str, str]
) -> tuple[dict[str, int], dict[str, int]]:
    assert server.proc is not None
    await _touch(server.url, paths[:1], headers)  # warm: the first request's one-off costs
    await asyncio.sleep(1.0)
    before = proc_stats(server.proc.pid)
    await _touch(server.url, paths[1:], headers)
    await asyncio.sleep(1.0)  # evictions and background closes settle
    return before, proc_stats(server.proc.pid)


async def idle_costs(
    tmp: Path,
    seeded: Server,
    pattern: Pattern,
    ranked: list[tuple[str, str]],
    headers: dict[str, str],
    args: argparse.Namespace,
) -> int:
    """RSS, threads, fds of fresh servers with every org created, then `--open` of them open."""
    await seeded.stop()
    count = args.open
    os.environ["RHYTHM_MAX_OPEN_TENANTS"] = str(count)
    rows = []
    server = rhythm_server(tmp)
    server.ready_timeout = 900.0  # start-up reads every tenant (services resume their feeds)
    started = time.perf_counter()
    async with server:
        print(f"Rhythm ready {time.perf_counter() - started:.1f} s after start with "
              f"{args.orgs} orgs", flush=True)  # fmt: skip
        rows.append(("Rhythm", *await _idle_one(server, pattern.paths[:count], headers)))
    raw_paths = [f"/t/{org_id}" for _, org_id in ranked[:count]]
    async with raw_server(tmp, count, "rhythm-data") as raw:  # after Rhythm stopped
        rows.append(("raw stack", *await _idle_one(raw, raw_paths, {})))
    print(f"\nidle cost, {args.orgs} orgs created, {count} opened (cap {count}), "
          f"load {os.getloadavg()[0]:.1f} (Rhythm's start-up already reads every tenant, so "
          f"its LRU is full before the first request):")  # fmt: skip
    for label, before, after in rows:
        per = {k: (after[k] - before[k]) / (count - 1) for k in before}
        print(f"{label:<10} after 1 request: RSS {before['rss_kib'] / 1024:6.1f} MiB, "
              f"{before['threads']:4d} threads, {before['fds']:5d} fds; "
              f"{count} open: RSS {after['rss_kib'] / 1024:6.1f} MiB, "
              f"{after['threads']:4d} threads, {after['fds']:5d} fds; "
              f"difference per tenant {per['rss_kib']:.0f} KiB, "
              f"{per['threads']:.2f} threads, {per['fds']:.2f} fds")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_tenants", description=__doc__)
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--pattern", choices=["zipf", "uniform"], default="zipf")
    parser.add_argument("--s", type=float, default=1.1, help="Zipf exponent")
    parser.add_argument("--cap", type=int, default=None,
                        help="RHYTHM_MAX_OPEN_TENANTS (default: the server's)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--no-warm", dest="warm", action="store_false",
                        help="skip reading every org once before the rounds")  # fmt: skip
    parser.add_argument("--split", action="store_true",
                        help="then latency of LRU hits vs misses per side")  # fmt: skip
    parser.add_argument("--idle", action="store_true", help="measure the idle cost instead")
    parser.add_argument("--ab", default="",
                        help="ENV=VALUE[,...]: also a second Rhythm with this environment, "
                             "on a copy of the data, in the same rounds")  # fmt: skip
    parser.add_argument("--open", type=int, default=256, help="tenants opened for --idle")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
