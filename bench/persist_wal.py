"""A tenant miss three ways: open, pragmas, a read, close.

``python -m bench.persist_wal [--threads 1 4] [--tenants 400] [--cycles 1500]``
copies one migrated template into ``--tenants`` folders, then N threads each run
``--cycles`` miss cycles over them (a random tenant of the thread's own share, as the
server never opens one tenant twice at once: connect, the server's pragma script, the
projects query, close), in three variants taking turns for ``--rounds`` rounds:

* ``SQLite default``: it creates ``-wal``/``-shm`` on open and deletes them on close;
* ``persistent WAL``: ``sqlite_setup.keep_wal_files`` (the files stay, ``-wal`` empty);
* ``held exclusively``: that and ``database.HOLD_EXCLUSIVELY`` (the WAL index in the
  connection's heap, no ``-shm`` mapped): a serving Rhythm's tenants.

It prints the CPU per cycle of the whole process (every thread, user + system), the
wall time per cycle and the minor page faults per cycle of each. SQLite's memory
statistics are off first, as in ``rhythm serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.open_cost import QUERY, cpu
from bench.tenant_seed import tenant_copies
from tracker.storage.database import BASE_PRAGMAS, HOLD_EXCLUSIVELY
from tracker.storage.pool import TENANT_FILE
from tracker.storage.sqlite_setup import (
    connection_handle,
    keep_wal_files,
    stop_memory_statistics,
)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


VARIANTS = ("SQLite default", "persistent WAL", "held exclusively")


def cycles(paths: list[str], count: int, variant: str, seed: int) -> None:
    rng = random.Random(seed)
    script = BASE_PRAGMAS.format(synchronous="NORMAL")
    if variant == "held exclusively":
        script = HOLD_EXCLUSIVELY + script
    for _ in range(count):
        path = rng.choice(paths)
        conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=rw", uri=True, isolation_level=None)
        handle = connection_handle(conn, path) if variant != "SQLite default" else None
        if handle is not None:
            keep_wal_files(handle)
        conn.executescript(script)
        conn.execute(QUERY).fetchall()
        conn.close()


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="rhythm-bench-persist-") as tmp_name:
        data, ids = await tenant_copies(Path(tmp_name), args.tenants)
        paths = [str(data / org_id / TENANT_FILE) for org_id in ids]
        for threads in args.threads:
            pool = ThreadPoolExecutor(threads)
            costs: dict[str, list[tuple[float, float, float]]] = {v: [] for v in VARIANTS}
            for n in range(args.rounds):
                turn = VARIANTS[n % 3 :] + VARIANTS[: n % 3]  # each goes first in turn
                for variant in turn:
                    started, spent, faults = time.perf_counter(), cpu(), minor_faults()
                    jobs = [pool.submit(cycles, paths[t::threads], args.cycles, variant,
                                        n * 100 + t) for t in range(threads)]  # fmt: skip
                    for job in jobs:
                        job.result()
                    done = args.cycles * threads
                    costs[variant].append((
                        (cpu() - spent) / done, (time.perf_counter() - started) / done,
                        (minor_faults() - faults) / done,
                    ))  # fmt: skip
            pool.shutdown()
            for variant in VARIANTS:
                spent_us = ", ".join(f"{c * 1e6:,.0f}" for c, _, _ in costs[variant])
                wall_us = ", ".join(f"{w * 1e6:,.0f}" for _, w, _ in costs[variant])
                fault_rate = statistics.median(f for _, _, f in costs[variant])
                print(f"{threads} thread(s), {variant:16s}: CPU per cycle {spent_us} us; "
                      f"wall per cycle {wall_us} us; {fault_rate:.1f} page faults")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    stop_memory_statistics()  # as `rhythm serve` does, before the first connection
    parser = argparse.ArgumentParser(prog="python -m bench.persist_wal", description=__doc__)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--tenants", type=int, default=400)
    parser.add_argument("--cycles", type=int, default=1500, help="per thread and round")
    parser.add_argument("--rounds", type=int, default=4)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
