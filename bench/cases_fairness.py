"""Fairness benchmark: one greedy reader vs another user's single-issue reads and writes.

    .venv/bin/python -m bench.gen --data-dir /tmp/rhythm-60k --issues 60000 --projects 1 \
        --baseline 0
    .venv/bin/python -m bench.cases_fairness --data-dir /tmp/rhythm-60k --seconds 10

Against `rhythm serve` on that data directory, user B (a second org member)
reads `GET …/projects/CORE/issues/1` back to back and adds a comment every
100 ms, first alone (the baseline), then while user A (the bench owner) keeps
eight worst-case searches in flight (`q=-<most common word>&limit=200` by
default; `--query`, `--highlight`, `--greedy N` change that). Prints
p50 / p99 / max of B's reads and writes in both phases and what A's searches
answered. Goal (issue 12): B's read p99 < 100 ms under that load, writes not
delayed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import glob
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp

from bench.api import PASSWORD, Api
from bench.gen import EMAIL, ORG
from bench.servers import HOST, Server, free_port

PROJECT = "CORE"
GREEDY = 8


def most_common_word(tenant: str) -> str:
    conn = sqlite3.connect(f"file:{tenant}?mode=ro", uri=True)
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, issue_search, 'row')")
        row = conn.execute(
            "SELECT term FROM temp.v WHERE term GLOB '[a-z]*' AND length(term) > 3 "
            "ORDER BY doc DESC LIMIT 1"
        ).fetchone()
        return str(row[0])
    finally:
        conn.close()


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<28} (none)"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (f"{label:<28} n={len(values):>5}  p50 {statistics.median(ordered):7.1f} ms  "
            f"p99 {p99:7.1f} ms  max {ordered[-1]:7.1f} ms")  # fmt: skip


async def timed(session: aiohttp.ClientSession, method: str, url: str, **kw: object) -> float:
    began = time.perf_counter()
    async with session.request(method, url, **kw) as response:  # type: ignore[arg-type]
        await response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {url}: {response.status}")
    return (time.perf_counter() - began) * 1000


async def victim(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], seconds: float
) -> tuple[list[float], list[float]]:
    """B's reads back to back, and a comment every 100 ms, for `seconds`."""
    issue = f"{base}/api/v1/orgs/{ORG}/projects/{PROJECT}/issues/1"
    reads: list[float] = []
    writes: list[float] = []
    end = time.monotonic() + seconds

    async def read_loop() -> None:
        while time.monotonic() < end:
            reads.append(await timed(session, "GET", issue, headers=headers))

    async def write_loop() -> None:
        while time.monotonic() < end:
            body = {"body": "still here"}
            writes.append(await timed(session, "POST", issue + "/comments", json=body,
                                      headers=headers))  # fmt: skip
            await asyncio.sleep(0.1)

    await asyncio.gather(read_loop(), write_loop())
    return reads, writes


async def greedy(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], stop: asyncio.Event,
    statuses: collections.Counter[int],
) -> None:  # fmt: skip
    while not stop.is_set():
        async with session.get(url, headers=headers) as response:
            await response.read()
            statuses[response.status] += 1


async def run(
    data_dir: Path, seconds: float, query: str | None, greedy_n: int, highlight: bool
) -> int:
    (tenant,) = glob.glob(str(data_dir / "*" / "tracker.db"))
    query = query or "-" + most_common_word(tenant)
    port = free_port()
    argv = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data_dir),
            "--host", HOST, "--port", str(port)]  # fmt: skip
    log = data_dir / "bench-fairness.log"
    async with Server("rhythm", argv, "/api/v1/health/live", port, log) as server:
        connector = aiohttp.TCPConnector(limit=greedy_n + 4)
        async with aiohttp.ClientSession(connector=connector) as session:
            api = Api(session, server.url)
            login = {"email": EMAIL, "password": PASSWORD}
            owner = await api.call("POST", "/api/v1/auth/login", json=login)
            a = {"Authorization": f"Bearer {owner['access_token']}"}
            b_email = f"victim-{port}@example.com"
            await api.call("POST", "/api/v1/auth/register", expect=201,
                           json={"email": b_email, "password": PASSWORD})  # fmt: skip
            await api.call("POST", f"/api/v1/orgs/{ORG}/members", token=owner["access_token"],
                           json={"email": b_email, "role": "member"}, expect=201)  # fmt: skip
            b_login = await api.call("POST", "/api/v1/auth/login",
                                     json={"email": b_email, "password": PASSWORD})  # fmt: skip
            b = {"Authorization": f"Bearer {b_login['access_token']}"}

            base_reads, base_writes = await victim(session, server.url, b, seconds)
            extra = "&highlight=true" if highlight else ""
            search = (f"{server.url}/api/v1/orgs/{ORG}/projects/{PROJECT}/issues"
                      f"?q={quote(query)}&limit=200{extra}")  # fmt: skip
            stop, statuses = asyncio.Event(), collections.Counter[int]()
            hogs = [asyncio.create_task(greedy(session, search, a, stop, statuses))
                    for _ in range(greedy_n)]  # fmt: skip
            await asyncio.sleep(1)  # let the greedy queue build up
            load_reads, load_writes = await victim(session, server.url, b, seconds)
            stop.set()
            await asyncio.gather(*hogs)
    shown = f"q={query}&limit=200{'&highlight=true' if highlight else ''}"
    print(f"greedy query: {shown} x {greedy_n} in flight")
    print(summary("B read, alone", base_reads))
    print(summary("B read, greedy load", load_reads))
    print(summary("B comment, alone", base_writes))
    print(summary("B comment, greedy load", load_writes))
    print("A's searches answered: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cases_fairness", description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--query", help="the greedy query (default: -<most common word>)")
    parser.add_argument("--greedy", type=int, default=GREEDY, help="searches kept in flight")
    parser.add_argument("--highlight", action="store_true", help="ask for snippets too")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.data_dir, args.seconds, args.query, args.greedy, args.highlight))


if __name__ == "__main__":
    raise SystemExit(main())
