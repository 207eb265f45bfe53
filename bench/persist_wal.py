"""A tenant miss with and without persistent WAL: open, pragmas, a read, close.

``python -m bench.persist_wal [--threads 1 4] [--tenants 400] [--cycles 1500]``
copies one migrated template into ``--tenants`` folders, then N threads each run
``--cycles`` miss cycles over them (a random tenant: connect, the server's pragma
script, the projects query, close), once as SQLite does by default (it creates
``-wal``/``-shm`` on open and deletes them on close) and once with
``sqlite_setup.keep_wal_files`` (the server's way: the files stay, ``-wal`` empty),
alternating for ``--rounds`` rounds. It prints the CPU per cycle of the whole process
(every thread, user + system) and the wall time per cycle of each. SQLite's memory
statistics are off first, as in ``rhythm serve``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.open_cost import QUERY, cpu
from bench.tenant_seed import tenant_copies
from tracker.storage.database import BASE_PRAGMAS
from tracker.storage.pool import TENANT_FILE
from tracker.storage.sqlite_setup import (
    connection_handle,
    keep_wal_files,
    stop_memory_statistics,
)


def cycles(paths: list[str], count: int, persist: bool, seed: int) -> None:
    rng = random.Random(seed)
    script = BASE_PRAGMAS.format(synchronous="NORMAL")
    for _ in range(count):
        path = rng.choice(paths)
        conn = sqlite3.connect(f"{Path(path).as_uri()}?mode=rw", uri=True, isolation_level=None)
        handle = connection_handle(conn, path) if persist else None
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
            costs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
            for n in range(args.rounds):
                for persist in (False, True) if n % 2 == 0 else (True, False):
                    started, spent = time.perf_counter(), cpu()
                    jobs = [pool.submit(cycles, paths, args.cycles, persist, n * 100 + t)
                            for t in range(threads)]  # fmt: skip
                    for job in jobs:
                        job.result()
                    done = args.cycles * threads
                    costs[persist].append(
                        ((cpu() - spent) / done, (time.perf_counter() - started) / done)
                    )
            pool.shutdown()
            for persist in (False, True):
                label = "persistent WAL" if persist else "SQLite default"
                spent_us = ", ".join(f"{c * 1e6:,.0f}" for c, _ in costs[persist])
                wall_us = ", ".join(f"{w * 1e6:,.0f}" for _, w in costs[persist])
                print(f"{threads} thread(s), {label:15s}: CPU per cycle {spent_us} us; "
                      f"wall per cycle {wall_us} us")  # fmt: skip
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
