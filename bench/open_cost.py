"""The tenant-open path alone: TenantPool leases vs an inline sqlite3 LRU, no HTTP.

``python -m bench.open_cost --tenants 2000 --cap 128 --pattern uniform``
copies one migrated template into ``--tenants`` folders (bench/tenant_seed.py),
then runs alternating rounds of ``--tasks`` coroutines that each lease a tenant
(drawn uniformly or by Zipf) and read its projects, through:

* ``pool``: ``TenantPool`` (the server's path: open lock, thread hop, migrations
  check, LRU eviction closing in the background), the read answered as the
  server's small reads are (`read_now`; ``--hop``: through `Database.read`);
* ``inline``: a plain OrderedDict of sqlite3 connections on the event loop, the
  raw stack's shape (bench/raw_tenants.py).

It prints operations/s of each, their ratio (median of per-round ratios), and
the process CPU time per operation (all threads, user + system): on a shared
box the CPU cost moves far less with other processes' load than the rate does.
That is the storage layer's share of what a miss costs, without HTTP, auth or
JSON in the way; used to measure each change of the open path piece by piece.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

from bench.cases_tenants import Pattern
from bench.raw_tenants import PRAGMAS
from bench.tenant_seed import make_template, tenant_copies
from tracker.storage.pool import TENANT_FILE, TenantPool

QUERY = (
    "SELECT id, key, name, description, visibility FROM projects "
    "WHERE deleted_at IS NULL ORDER BY key"
)


def cpu() -> float:
    """CPU seconds this process used so far, every thread, user + system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _query(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(QUERY).fetchall()


async def pool_round(
    pool: TenantPool, pattern: Pattern, tasks: int, seconds: float, hop: bool = False
) -> tuple[float, float]:
    """Leases and reads as the server's small reads do (`tracker.services.access.read`:
    the open-tenant fast path, then `read_now`), or with `hop` through `Database.read`."""
    done, rng, cpu0 = [0], random.Random(5), cpu()
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            org_id = pattern.draw(rng)
            if hop:
                async with pool.lease(org_id) as db:
                    await db.read(_query)
            elif (hit := pool.lease_open(org_id)) is not None:
                try:
                    await hit.read_now(_query)
                finally:
                    pool.release(hit)
            else:
                async with pool.lease(org_id) as db:
                    await db.read_now(_query)
            done[0] += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return done[0] / (time.perf_counter() - started), (cpu() - cpu0) / done[0]


async def inline_round(
    data: Path, pattern: Pattern, cap: int, tasks: int, seconds: float
) -> tuple[float, float]:
    lru: OrderedDict[str, sqlite3.Connection] = OrderedDict()
    done, rng, cpu0 = [0], random.Random(5), cpu()
    deadline = time.perf_counter() + seconds

    def tenant(org_id: str) -> sqlite3.Connection:
        conn = lru.get(org_id)
        if conn is not None:
            lru.move_to_end(org_id)
            return conn
        uri = (data / org_id / TENANT_FILE).as_uri() + "?mode=rw"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=5)
        conn.executescript(PRAGMAS)
        lru[org_id] = conn
        while len(lru) > cap:
            lru.popitem(last=False)[1].close()
        return conn

    async def worker() -> None:
        while time.perf_counter() < deadline:
            tenant(pattern.draw(rng)).execute(QUERY).fetchall()
            done[0] += 1
            await asyncio.sleep(0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    rate = done[0] / (time.perf_counter() - started)
    for conn in lru.values():
        conn.close()
    return rate, (cpu() - cpu0) / done[0]


#: Template variants for `--schema-parts`: what is dropped from a copy of the template.
PARTS: dict[str, tuple[str, ...]] = {
    "full": (),
    "no indexes": ("index",),
    "no triggers": ("trigger",),
    "no FTS5 table": ("fts",),
    "tables only": ("index", "trigger", "fts", "view"),
    "one table": ("all",),  # the floor: connect, WAL files, a one-line schema
}


def schema_variant(template: Path, folder: Path, drop: tuple[str, ...]) -> Path:
    """A copy of `template` without the given kinds of schema objects, vacuumed."""
    folder.mkdir(parents=True)
    path = folder / TENANT_FILE
    path.write_bytes(template.read_bytes())
    conn = sqlite3.connect(path, isolation_level=None)
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    if "all" in drop:
        conn.close()
        path.unlink()
        conn = sqlite3.connect(path, isolation_level=None)
        conn.executescript("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY)")
        rows = []
    for kind, name, sql in rows:
        fts = kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL TABLE")
        if "fts" in drop and fts:
            conn.execute(f'DROP TABLE "{name}"')
        elif kind in drop and kind != "table" and sql is not None:
            conn.execute(f'DROP {kind.upper()} "{name}"')
    conn.execute("VACUUM")
    conn.close()
    return path


async def schema_parts(args: argparse.Namespace) -> int:
    """`--schema-parts`: the cost of an open (connect + the pragma script, which parses the
    schema) with kinds of schema objects left out, the variants taking turns open by open."""
    import shutil

    from tracker.storage.database import BASE_PRAGMAS

    with tempfile.TemporaryDirectory(prefix="rhythm-schema-cost-") as tmp_name:
        tmp = Path(tmp_name)
        template = await make_template(tmp / "template")
        variants = {name: schema_variant(template, tmp / f"v{n}", drop)
                    for n, (name, drop) in enumerate(PARTS.items())}  # fmt: skip
        for name, path in variants.items():
            conn = sqlite3.connect(path)
            count = conn.execute(
                "SELECT count(*), coalesce(sum(length(sql)), 0) FROM sqlite_master"
            ).fetchone()
            conn.close()
            print(f"{name:<14} {count[0]:3d} schema objects, {count[1]:,} bytes of SQL")
        script = BASE_PRAGMAS.format(synchronous="NORMAL")
        times: dict[str, list[float]] = {name: [] for name in variants}
        for n in range(args.opens):
            for name, path in variants.items():
                copy = tmp / f"open-{n % 8}.db"
                shutil.copyfile(path, copy)
                t0 = time.thread_time()
                conn = sqlite3.connect(copy.as_uri() + "?mode=rw", uri=True, isolation_level=None)
                conn.executescript(script)
                times[name].append(time.thread_time() - t0)
                conn.close()
        full = statistics.median(times["full"])
        for name, spent in times.items():
            med = statistics.median(spent)
            print(f"{name:<14} open (connect + pragmas: the schema parse) CPU p50 "
                  f"{med * 1e6:6,.0f} us ({(med - full) * 1e6:+,.0f} us vs full), load "
                  f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    return 0


async def run(args: argparse.Namespace) -> int:
    if args.schema_parts:
        return await schema_parts(args)
    if args.switch:
        sys.setswitchinterval(args.switch)
    with tempfile.TemporaryDirectory(prefix="rhythm-open-cost-") as tmp_name:
        data, org_ids = await tenant_copies(Path(tmp_name), args.tenants)
        pattern = Pattern(args.pattern, org_ids, args.s)
        pool = TenantPool(data, max_open=args.cap)
        for org_id in org_ids:  # warm: every tenant opened (and checked) once
            async with pool.lease(org_id):
                pass
        rates: dict[str, list[float]] = {"pool": [], "inline": []}
        cpus: dict[str, list[float]] = {"pool": [], "inline": []}
        for n in range(args.rounds):
            for side in ("pool", "inline") if n % 2 == 0 else ("inline", "pool"):
                if side == "pool":
                    rate, cost = await pool_round(pool, pattern, args.tasks, args.seconds, args.hop)
                else:
                    rate, cost = await inline_round(
                        data, pattern, args.cap, args.tasks, args.seconds
                    )
                rates[side].append(rate)
                cpus[side].append(cost)
            print(f"round {n + 1}: pool {rates['pool'][-1]:,.0f}/s "
                  f"{cpus['pool'][-1] * 1e6:,.0f} us CPU/op, inline {rates['inline'][-1]:,.0f}/s "
                  f"{cpus['inline'][-1] * 1e6:,.0f} us CPU/op, load {os.getloadavg()[0]:.1f}",
                  file=sys.stderr, flush=True)  # fmt: skip
        print(f"pool: {pool.opens:,} opens, {pool.close_hops:,} close hops, "
              f"{pool.threads_started} threads started", file=sys.stderr)  # fmt: skip
        await pool.close_all()
    ratios = [p / i for p, i in zip(rates["pool"], rates["inline"], strict=True)]
    print(f"{args.tenants} tenants, cap {args.cap}, {pattern.label()}, {args.tasks} tasks, "
          f"miss rate {pattern.lru_miss_rate(args.cap):.1%}: pool "
          f"{statistics.median(rates['pool']):,.0f}/s "
          f"({statistics.median(cpus['pool']) * 1e6:,.0f} us CPU/op), inline "
          f"{statistics.median(rates['inline']):,.0f}/s "
          f"({statistics.median(cpus['inline']) * 1e6:,.0f} us CPU/op), pool/inline "
          f"{statistics.median(ratios):.0%}")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    from tracker.storage.sqlite_setup import stop_memory_statistics

    stop_memory_statistics()  # as `rhythm serve` does, before the first connection
    parser = argparse.ArgumentParser(prog="python -m bench.open_cost", description=__doc__)
    parser.add_argument("--tenants", type=int, default=2000)
    parser.add_argument("--cap", type=int, default=128)
    parser.add_argument("--pattern", choices=["zipf", "uniform"], default="uniform")
    parser.add_argument("--s", type=float, default=1.1)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--switch", type=float, default=0.0,
                        help="sys.setswitchinterval (0: the default)")  # fmt: skip
    parser.add_argument(
        "--schema-parts",
        action="store_true",
        help="the open's cost with kinds of schema objects left out",
    )
    parser.add_argument("--opens", type=int, default=500, help="opens per variant (--schema-parts)")
    parser.add_argument("--hop", action="store_true",
                        help="read through Database.read (a thread hop), not read_now")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=3)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
