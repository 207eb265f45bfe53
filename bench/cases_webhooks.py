"""Webhooks: delivery throughput vs a plain aiohttp client, and API writes with hooks vs none.

    python -m bench.cases_webhooks --events 1000 --hooks 4 --rounds 5

Both parts POST to one receiver process (plain aiohttp, answers 200 at once).

1. Delivery throughput. Each round imports `--events` new issues (one event each,
   in batches of 50) into a project with `--hooks` hooks while the webhook service
   is stopped, then
   starts it and times until every delivery is `delivered`: the consumer renders
   the events and writes the outbox, the sender POSTs each one signed and writes
   its outcome and attempt (one transaction each). The baseline is a plain
   aiohttp client POSTing the same bodies with the same headers, one worker per
   hook (a hook's deliveries go out one at a time in Rhythm too). Rounds alternate
   sides with rotating order; the figure is deliveries/s and the median ratio
   (goal >= 50 %). The per-host limit is set to the hook count (all hooks share
   the host 127.0.0.1 here).
2. API write latency. Two real servers (`rhythm serve`), one with three hooks on
   the project (every event, to the receiver), one with none, loaded alternately:
   saturated (`--connections` clients as fast as they go: req/s, the box's CPU is
   shared with the deliveries and the receiver) and paced (`--rate` writes/s, open
   loop: p50/p99 latency). The goal (writes unaffected, >= 95 %) is read on the
   paced latency: none p50 / 3 hooks p50. Each side's deliveries are drained
   before the other side runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.api import Api, register_and_login
from bench.cases import Request
from bench.gen import generate, setup_org
from bench.pyload import PythonDriver
from bench.servers import ROOT, free_port, rhythm_server
from tracker.core import open_core
from tracker.domain.changes import Actor
from tracker.domain.models.webhooks import WebhookIn
from tracker.services import feed
from tracker.services.access import ProjectAccess
from tracker.services.imports import import_issues
from tracker.services.webhook_delivery import CONSUMER, WebhookService
from tracker.services.webhooks import create_webhook
from tracker.settings import Settings

# --- the receiver ---------------------------------------------------------------------------


def serve_receiver(port: int) -> None:
    """Answer every POST with 200 at once (run in its own process)."""

    received = [0]

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        received[0] += 1
        return web.Response(text="ok")

    async def count(request: web.Request) -> web.Response:
        return web.Response(text=str(received[0]))

    app = web.Application()
    app.router.add_get("/count", count)
    app.router.add_route("*", "/{tail:.*}", ok)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def start_receiver() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.cases_webhooks", "--receiver", str(port)], cwd=ROOT
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/ready"):
                    return process, port
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("receiver did not start")


# --- part 1: delivery throughput ----------------------------------------------------------


async def delivery_rounds(args: argparse.Namespace, port: int, workdir: Path) -> list[float]:
    settings = Settings(
        data_dir=workdir / "deliveries", log_level="warning", argon2_time_cost=1,
        argon2_memory_kib=8192, webhook_allow_private=True,
        webhook_host_concurrency=args.hooks,
    )  # fmt: skip
    ratios: list[float] = []
    # background=False: each round starts its own WebhookService on this core
    async with open_core(settings, background=False) as core:
        user_id, _, (access,) = await setup_org(core, 1)
        actor = Actor(user_id, "system")
        for n in range(args.hooks):
            data = WebhookIn(url=f"http://127.0.0.1:{port}/hook/{n}", events=["*"])
            await create_webhook(core, access, data, actor)
        bodies: list[list[tuple[bytes, dict[str, str]]]] = []
        for round_no in range(args.rounds):
            results: dict[str, float] = {}
            cpu: dict[str, float] = {}  # process CPU µs per delivery: robust to box load
            if round_no % 2 and bodies:  # odd rounds: plain first (on last round's bodies)
                results["plain"], cpu["plain"] = await plain_round(bodies, port)
            results["rhythm"], cpu["rhythm"], bodies = await rhythm_round(
                core, access, actor, args, seed=100 + round_no
            )
            if "plain" not in results:
                results["plain"], cpu["plain"] = await plain_round(bodies, port)
            ratios.append(results["rhythm"] / results["plain"])
            print(f"  round {round_no + 1}: Rhythm {results['rhythm']:6.0f} deliveries/s "
                  f"({cpu['rhythm']:4.0f} µs CPU each)   plain aiohttp {results['plain']:6.0f} "
                  f"POST/s ({cpu['plain']:4.0f} µs CPU each)   ratio {ratios[-1]:.0%}, "
                  f"CPU ratio {cpu['plain'] / cpu['rhythm']:.0%}", flush=True)  # fmt: skip
    return ratios


async def rhythm_round(
    core: Any, access: ProjectAccess, actor: Actor, args: argparse.Namespace, seed: int
) -> tuple[float, float, list[list[tuple[bytes, dict[str, str]]]]]:
    """Import events with the service stopped, then time the service delivering them all;
    (deliveries/s, process CPU µs per delivery (both threads), the bodies per hook)."""
    issues = list(generate(args.events, [actor.user_id or ""], seed))
    for start in range(0, len(issues), 50):  # 50-issue batches: pages pipeline with sending
        await import_issues(core, access, actor, issues[start : start + 50])

    def counts(conn: sqlite3.Connection) -> tuple[int, int]:
        """(rows so far, pending): O(1) and the partial pending index, no table scan (a
        scan every poll took a fair share of the tenant thread the sender needs)."""
        rows = conn.execute("SELECT coalesce(max(rowid), 0) FROM webhook_deliveries")
        pending = conn.execute("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'")
        return int(rows.fetchone()[0]), int(pending.fetchone()[0])

    org_id = access.org.id
    async with core.tenants.lease(org_id) as db:
        before = (await db.read(counts))[0]
        head = await feed.head(core, org_id)
        service = WebhookService(core)
        started, cpu_started = time.perf_counter(), time.process_time()
        await service.start()
        while True:
            await asyncio.sleep(0.05)
            # the cursor first: it commits with the rows, so counts read after it see them
            cursor = await feed.cursor_of(core, org_id, CONSUMER)
            rows, pending = await db.read(counts)
            if cursor >= head and pending == 0:
                break
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        await service.stop()
        total = rows - before
        rows_read = await db.read(
            lambda conn: conn.execute(
                "SELECT webhook_id, body, request_headers FROM webhook_deliveries "
                "ORDER BY rowid DESC LIMIT ?",
                (total,),
            ).fetchall()
        )
    per_hook: dict[str, list[tuple[bytes, dict[str, str]]]] = {}
    for row in reversed(rows_read):
        per_hook.setdefault(row[0], []).append((bytes(row[1]), json.loads(row[2])))
    return total / elapsed, cpu / total * 1e6, list(per_hook.values())


async def plain_round(
    bodies: list[list[tuple[bytes, dict[str, str]]]], port: int
) -> tuple[float, float]:
    """The same bodies and headers, one worker per hook, plain aiohttp; (POST/s, CPU µs each)."""
    total = sum(len(b) for b in bodies)
    # the same 10 s limit as Rhythm's client (without one, a lost answer hung a run)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def worker(n: int, items: list[tuple[bytes, dict[str, str]]]) -> None:
            url = f"http://127.0.0.1:{port}/hook/{n}"
            for body, headers in items:
                for _ in range(3):  # a failed POST is sent again, as Rhythm would
                    try:
                        async with session.post(url, data=body, headers=headers) as response:
                            await response.read()
                            if response.status == 200:
                                break
                    except (aiohttp.ClientError, TimeoutError):
                        continue

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(n, items) for n, items in enumerate(bodies)))
        cpu = time.process_time() - cpu_started
        return total / (time.perf_counter() - started), cpu / total * 1e6


# --- part 2: API writes with three hooks vs none ----------------------------------------------


async def write_rounds(args: argparse.Namespace, port: int, workdir: Path) -> list[float]:
    os.environ["RHYTHM_WEBHOOK_ALLOW_PRIVATE"] = "true"
    (workdir / "with").mkdir()
    (workdir / "without").mkdir()
    driver = PythonDriver(args.connections)
    ratios: list[float] = []
    saturated: list[float] = []
    async with (
        rhythm_server(workdir / "with") as hooked,
        rhythm_server(workdir / "without") as plain,
        aiohttp.ClientSession() as session,
    ):
        requests = {}
        for label, server in (("hooks", hooked), ("none", plain)):
            api = Api(session, server.url)
            token = await register_and_login(api)
            await api.call("POST", "/api/v1/orgs", json={"name": "b", "slug": "bench"},
                           token=token, expect=201)  # fmt: skip
            await api.call("POST", "/api/v1/orgs/bench/projects",
                           json={"name": "Web", "key": "WEB"}, token=token, expect=201)  # fmt: skip
            if label == "hooks":
                for n in range(3):
                    await api.call("POST", "/api/v1/orgs/bench/projects/WEB/webhooks",
                                   json={"url": f"http://127.0.0.1:{port}/w/{n}",
                                         "events": ["*"]}, token=token, expect=201)  # fmt: skip
            requests[label] = Request(
                "POST", "/api/v1/orgs/bench/projects/WEB/issues",
                {"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                b'{"title": "bench {seq}"}', expect=201,
            )  # fmt: skip
        for round_no in range(args.rounds):
            order = (("hooks", hooked), ("none", plain))
            full: dict[str, Any] = {}
            calm: dict[str, list[float]] = {}
            cost: dict[str, float] = {}  # server CPU ms per write, its deliveries included
            for label, server in order if round_no % 2 == 0 else order[::-1]:
                cpu_before = process_cpu(server)
                full[label] = await driver.run(server.url, requests[label], args.seconds)
                await drained(session, port)  # deliveries must not run into the next side
                cost[label] = (process_cpu(server) - cpu_before) / full[label].requests * 1000
                calm[label] = await paced(session, server.url, requests[label], args)
                await drained(session, port)
            h, n = full["hooks"], full["none"]
            hp50, np50 = (statistics.median(calm[k]) * 1000 for k in ("hooks", "none"))
            hp99, np99 = (statistics.quantiles(calm[k], n=100)[98] * 1000
                          for k in ("hooks", "none"))  # fmt: skip
            ratios.append(np50 / hp50)
            saturated.append(h.rps / n.rps)
            print(f"  round {round_no + 1}: saturated ({args.connections} connections) 3 hooks "
                  f"{h.rps:5.0f} req/s vs none {n.rps:5.0f} = {saturated[-1]:.0%} | "
                  f"{args.rate}/s paced: p50 {hp50:.2f} vs {np50:.2f} ms, p99 {hp99:.1f} vs "
                  f"{np99:.1f} ms, latency ratio {ratios[-1]:.0%} | server CPU per write "
                  f"{cost['hooks']:.2f} vs {cost['none']:.2f} ms", flush=True)  # fmt: skip
    print(f"  saturated throughput, median ratio {statistics.median(saturated):.0%}")
    return ratios


async def paced(
    session: aiohttp.ClientSession, base: str, req: Request, args: argparse.Namespace
) -> list[float]:
    """Writes at a fixed rate (open loop) for args.seconds; their latencies in seconds."""
    latencies: list[float] = []

    async def one(seq: int) -> None:
        started = time.perf_counter()
        async with session.request(req.method, base + req.path, headers=dict(req.headers),
                                   data=req.render_body(seq)) as response:  # fmt: skip
            await response.read()
            assert response.status == req.expect, response.status
        latencies.append(time.perf_counter() - started)

    tasks = []
    start = time.perf_counter()
    for n in range(int(args.rate * args.seconds)):
        delay = start + n / args.rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(10_000_000 + n)))
    await asyncio.gather(*tasks)
    return latencies


def process_cpu(server: Any) -> float:
    """User + system CPU seconds of a server process so far (Linux /proc)."""
    fields = Path(f"/proc/{server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drained(session: aiohttp.ClientSession, port: int) -> None:
    """Wait until the receiver's count stops moving (the hooked server's backlog is sent)."""
    last = -1
    while True:
        async with session.get(f"http://127.0.0.1:{port}/count") as response:
            now = int(await response.text())
        if now == last:
            return
        last = now
        await asyncio.sleep(0.5)


async def main(args: argparse.Namespace) -> None:
    receiver, port = await start_receiver()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
            workdir = Path(tmp)
            if args.only in (None, "deliveries"):
                print(f"delivery throughput: {args.events} events x {args.hooks} hooks per round")
                ratios = await delivery_rounds(args, port, workdir)
                print(f"  median ratio {statistics.median(ratios):.0%} (goal >= 50 %)\n")
            if args.only in (None, "writes"):
                print("API writes (POST issue): 3 hooks vs none")
                ratios = await write_rounds(args, port, workdir)
                print(f"  paced write latency, median ratio {statistics.median(ratios):.0%} "
                      "(none p50 / 3 hooks p50; goal >= 95 %)")  # fmt: skip
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--hooks", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rate", type=float, default=100.0, help="paced writes per second")
    parser.add_argument("--only", choices=("deliveries", "writes"))
    parser.add_argument("--receiver", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.receiver:
        serve_receiver(options.receiver)
    else:
        asyncio.run(main(options))
