"""The read path (issue 22): Rhythm's GETs beside the raw stacks, in the same run.

``python -m bench.cases_read [--rounds 7] [--seconds 1] [--only issue,board] [--before DIR]``

One Rhythm server (fresh data dir; a user, an org, project WEB with ``--issues``
issues spread over its four stages, made through the API), then two raw servers
(bench/raw_read.py) reading Rhythm's very tenant file: plain aiohttp + sqlite3
**inline** on the event loop (the physical best for a tiny read) and its
**aiosqlite** twin. For each kind of read, every round loads the sides back to
back in a rotated order and then in the mirror of that order (A B C C B A, each
slice ``--seconds``), so a load that drifts during the round (other processes on a
shared box) weighs on every side alike; a side's round is its two slices summed.
Each side is warmed up first (``--warmup`` seconds per kind). Figures: req/s and
server CPU per request (user + system time of the server process over its requests:
what one request costs, which moves much less than req/s when the box is shared);
verdicts are medians of per-round ratios, with their min-max:

==========  ===============================================  =====================
kind        Rhythm request                                   goals
==========  ===============================================  =====================
health      ``GET /api/v1/health/live`` (all routes loaded)  >= 85 % of plain
issue       ``GET …/projects/WEB/issues/1``                  >= 50 % inline, >= 100 % aiosqlite
projects    ``GET /api/v1/orgs/{org}/projects``              >= 100 % aiosqlite
list        ``GET …/projects/WEB/issues?limit=50``           >= 100 % aiosqlite
board       ``GET …/projects/WEB/board?limit=50``            >= 100 % aiosqlite
==========  ===============================================  =====================

``--before DIR`` adds a second Rhythm served from another source tree (e.g. an
export of main: ``git archive main | tar -x -C DIR``) with its own identical data,
loaded in the same rounds, so before/after figures come from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.api import Api, register_and_login
from bench.cases import Request
from bench.load import Result, check, pick_driver
from bench.raw_read import BOARD_LIMIT
from bench.servers import HOST, RHYTHM_READY, Server, free_port

KINDS = ("health", "issue", "projects", "list", "board")
STATUSES = ("Open", "In Progress", "Resolved", "Closed")
#: (side, goal) per kind: Rhythm's median per-round ratio against that side.
GOALS: dict[str, tuple[tuple[str, float], ...]] = {
    "health": (("inline", 0.85),),
    "issue": (("inline", 0.50), ("aiosqlite", 1.00)),
    "projects": (("aiosqlite", 1.00),),
    "list": (("aiosqlite", 1.00),),
    "board": (("aiosqlite", 1.00),),
}
RAW_PATHS = {"health": "/health", "issue": "/issue", "projects": "/projects",
             "list": "/issues", "board": "/board"}  # fmt: skip


@dataclass
class Side:
    """One server under load and the request of each kind it answers."""

    name: str
    server: Server
    requests: dict[str, Request]
    results: dict[str, list[Result]] = field(default_factory=dict)
    #: server CPU seconds (user + system) per request, per round: steadier than req/s
    #: on a shared box, since other processes' load moves throughput, not CPU per request
    cpu: dict[str, list[float]] = field(default_factory=dict)

    def cpu_seconds(self) -> float:
        assert self.server.proc is not None
        fields = Path(f"/proc/{self.server.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def seed(url: str, issues: int) -> tuple[dict[str, Request], str, str]:
    """User, org, project WEB and its issues; returns (requests, org id, project id)."""
    async with aiohttp.ClientSession() as session:
        api = Api(session, url)
        token = await register_and_login(api)
        org = await api.call("POST", "/api/v1/orgs", json={"name": "Bench"}, token=token,
                             expect=201)  # fmt: skip
        base = f"/api/v1/orgs/{org['slug']}/projects"
        project = await api.call("POST", base, json={"name": "Web", "key": "WEB"}, token=token,
                                 expect=201)  # fmt: skip
        bodies = iter(
            {"title": f"Issue {n}", "description": "A description of moderate length. " * 4,
             "status": STATUSES[n % 4]} for n in range(issues)
        )  # fmt: skip

        async def worker() -> None:
            for body in bodies:
                await api.call("POST", f"{base}/WEB/issues", json=body, token=token, expect=201)

        await asyncio.gather(*(worker() for _ in range(8)))
    auth = {"Authorization": f"Bearer {token}"}
    requests = {
        "health": Request("GET", RHYTHM_READY),
        "issue": Request("GET", f"{base}/WEB/issues/1", auth),
        "projects": Request("GET", base, auth),
        "list": Request("GET", f"{base}/WEB/issues?limit=50", auth),
        "board": Request("GET", f"{base}/WEB/board?limit={BOARD_LIMIT}", auth),
    }
    return requests, str(org["id"]), str(project["id"])


def rhythm(data: Path, log: Path, label: str) -> Server:
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data),
            "--host", HOST, "--port", str(port)]  # fmt: skip
    return Server(label, argv, RHYTHM_READY, port, log)


async def start(stack: AsyncExitStack, server: Server, cwd: Path) -> Server:
    """Server.__aenter__ runs from the repository root; a `--before` tree runs from its own."""
    import bench.servers as servers

    root, servers.ROOT = servers.ROOT, cwd
    try:
        return await stack.enter_async_context(server)
    finally:
        servers.ROOT = root


async def run(args: argparse.Namespace) -> int:
    kinds = [k for k in KINDS if k in args.only.split(",")] if args.only else list(KINDS)
    driver = pick_driver(args.driver, args.connections, 1)
    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="rhythm-bench-read-") as tmp_name:
        tmp = Path(tmp_name)
        async with AsyncExitStack() as stack:
            sides: list[Side] = []
            after = await start(stack, rhythm(tmp / "after", tmp / "after.log", "rhythm"),
                                here)  # fmt: skip
            requests, org_id, project_id = await seed(after.url, args.issues)
            if args.before:
                src = Path(args.before).resolve()
                before = await start(
                    stack, rhythm(tmp / "before", tmp / "before.log", "before"), src
                )
                before_requests, _, _ = await seed(before.url, args.issues)
                sides.append(Side("before", before, before_requests))
            db = tmp / "after" / org_id / "tracker.db"
            for mode in ("inline", "aiosqlite"):
                port = free_port()
                argv = [sys.executable, "-m", "bench.raw_read", "--db", str(db), "--project",
                        project_id, "--mode", mode, "--port", str(port)]  # fmt: skip
                server = Server(mode, argv, "/health", port, tmp / f"{mode}.log")
                await stack.enter_async_context(server)
                raw = {k: Request("GET", p) for k, p in RAW_PATHS.items()}
                sides.append(Side(mode, server, raw))
            sides.append(Side("rhythm", after, requests))
            sides.sort(key=lambda s: ("inline", "aiosqlite", "before", "rhythm").index(s.name))
            for side in sides:
                for kind in kinds:
                    await check(side.server.url, side.requests[kind])
                    await driver.run(side.server.url, side.requests[kind], args.warmup)
            for n in range(args.rounds):
                for kind in kinds:
                    line = [f"round {n + 1}/{args.rounds} {kind:<8}"]
                    order = sides[n % len(sides) :] + sides[: n % len(sides)]  # rotate
                    done: dict[str, list[tuple[Result, float]]] = {}
                    for side in order + order[::-1]:  # mirrored: linear drift cancels
                        cpu = side.cpu_seconds()
                        result = await driver.run(side.server.url, side.requests[kind],
                                                  args.seconds)  # fmt: skip
                        done.setdefault(side.name, []).append((result, side.cpu_seconds() - cpu))
                        await asyncio.sleep(0.05)
                    for side in order:
                        (first, cpu_a), (second, cpu_b) = done[side.name]
                        result = combine(first, second)
                        per_request = (cpu_a + cpu_b) / max(result.requests, 1)
                        side.results.setdefault(kind, []).append(result)
                        side.cpu.setdefault(kind, []).append(per_request)
                        line.append(f"{side.name} {result.rps:>7,.0f} {per_request * 1e6:>4.0f}us")
                    print("  ".join(line), file=sys.stderr, flush=True)
    report(args, kinds, sides)
    return 0


def report(args: argparse.Namespace, kinds: list[str], sides: list[Side]) -> None:
    by_name = {s.name: s for s in sides}
    print(f"\nread path: {args.rounds} rounds x {args.seconds} s, {args.connections} connections, "
          f"{args.issues} issues; median req/s (p99 ms), median per-round ratios")  # fmt: skip
    header = "".join(f"{s.name:>18}" for s in sides)
    print(f"{'kind':<10}{header}")
    for kind in kinds:
        cells = []
        for side in sides:
            rs = side.results[kind]
            rps = statistics.median(r.rps for r in rs)
            p99 = statistics.median(r.p99_ms for r in rs)
            cells.append(f"{rps:>10,.0f} ({p99:>4.1f})")
        print(f"{kind:<10}{''.join(cells)}")
    print("\nserver CPU per request, µs (median over rounds; ratios below: median of the "
          "per-round ratios, min-max in brackets):")  # fmt: skip
    print(f"{'kind':<10}" + "".join(f"{s.name:>18}" for s in sides))
    for kind in kinds:
        row = "".join(f"{statistics.median(s.cpu[kind]) * 1e6:>18.0f}" for s in sides)
        print(f"{kind:<10}{row}")
    print()
    for kind in kinds:
        for who in ("rhythm", "before"):
            if who not in by_name:
                continue
            mine = by_name[who].results[kind]
            parts = []
            for other, goal in GOALS[kind]:
                ratio = median_ratio(mine, by_name[other].results[kind])
                verdict = "OK" if ratio >= goal else "MISS"
                parts.append(f"vs {other} {ratio:.0%} (goal >= {goal:.0%}) {verdict}")
            if who == "rhythm" and "before" in by_name:
                parts.append(f"vs before {median_ratio(mine, by_name['before'].results[kind]):.0%}")
            print(f"{who:<7}{kind:<9} req/s " + "; ".join(parts))
            cpu_parts = []
            for other, goal in GOALS[kind]:
                ratios = cpu_ratios(by_name[who].cpu[kind], by_name[other].cpu[kind])
                ratio = statistics.median(ratios)
                verdict = "OK" if ratio >= goal else "MISS"
                cpu_parts.append(f"vs {other} {ratio:.0%} ({min(ratios):.0%}-{max(ratios):.0%}) "
                                 f"{verdict}")  # fmt: skip
            print(f"{'':<16} by CPU per request: " + "; ".join(cpu_parts))


def cpu_ratios(mine: list[float], theirs: list[float]) -> list[float]:
    """Per round, their CPU per request over mine (> 1: Rhythm spends less)."""
    return [t / m for m, t in zip(mine, theirs, strict=True) if m]


def combine(a: Result, b: Result) -> Result:
    """The two halves of a side's mirrored round as one run."""
    requests = a.requests + b.requests
    return Result(requests, a.errors + b.errors, a.seconds + b.seconds,
                  (a.p50_ms + b.p50_ms) / 2, max(a.p99_ms, b.p99_ms))  # fmt: skip


def median_ratio(mine: list[Result], theirs: list[Result]) -> float:
    return statistics.median(m.rps / t.rps for m, t in zip(mine, theirs, strict=True) if t.rps)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_read", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=1,
                        help="per load slice; each side gets two slices per round")  # fmt: skip
    parser.add_argument("--warmup", type=int, default=2, help="seconds per side and kind")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--issues", type=int, default=400)
    parser.add_argument("--only", default="", help="comma-separated kinds: " + ",".join(KINDS))
    parser.add_argument("--before", default="", help="a second source tree to serve beside")
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
