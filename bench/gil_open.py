"""The wall time of a tenant open on a thread, while the event loop's thread is busy vs idle.

``python -m bench.gil_open --opens 1200`` copies one migrated template into
``--opens`` folders, then opens them on ``--threads`` worker threads, the
``--variants`` of the open taking turns file by file (``before``: the pool's open
until the seventh session; ``one_check``: the migrations check in one statement;
``lean``: the pool's open now, tuning pragmas deferred), while the main thread
either sleeps (an idle event loop) or runs pure Python (a busy one, holding the GIL
except when the interpreter forces a switch), for each switch interval given.

Why: an open gives the GIL up around every SQLite call (connect, each statement of
the pragma script, each step of the `user_version` read: 17 times before, counted
with gdb on PyEval_SaveThread) and must take it back after each; while another
thread runs Python, a take-back can wait until that thread drops the GIL — at the
latest after `sys.getswitchinterval()` (5 ms by default). It prints, per variant, the
median and p90 wall time of an open and the worker's CPU time per open.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.tenant_seed import copy_tenants, make_template
from tracker.storage.database import BASE_PRAGMAS, TUNING_PRAGMAS
from tracker.storage.migrate import apply_migrations, is_current
from tracker.storage.pool import TENANT_FILE


def busy(stop: threading.Event) -> None:
    """Pure Python work that holds the GIL, as a loaded event loop does."""
    data = {"items": [{"id": n, "key": f"K{n}", "name": "x" * 20} for n in range(20)]}
    while not stop.is_set():
        for _ in range(50):
            str(data)


def _connect(path: Path) -> sqlite3.Connection:
    uri = path.as_uri() + "?mode=rw"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def open_before(path: Path) -> sqlite3.Connection:
    """The open before the seventh session: connect, all seven pragmas, then the
    migrations check through `execute` + `fetchone` (17 GIL releases)."""
    conn = _connect(path)
    conn.executescript(BASE_PRAGMAS.format(synchronous="NORMAL") + TUNING_PRAGMAS)
    apply_migrations(conn, "tenant")
    return conn


def open_one_check(path: Path) -> sqlite3.Connection:
    """Connect, all seven pragmas, the check in one statement (9 GIL releases)."""
    conn = _connect(path)
    conn.executescript(BASE_PRAGMAS.format(synchronous="NORMAL") + TUNING_PRAGMAS)
    assert is_current(conn, "tenant")
    return conn


def open_lean(path: Path) -> sqlite3.Connection:
    """The pool's open now: connect, the three pragmas reads and writes need (the
    tuning ones wait for the first unit on a thread), the check (5 GIL releases)."""
    conn = _connect(path)
    conn.executescript(BASE_PRAGMAS.format(synchronous="NORMAL"))
    assert is_current(conn, "tenant")
    return conn


Opener = Callable[[Path], sqlite3.Connection]
VARIANTS: dict[str, Opener] = {
    "before": open_before,
    "one_check": open_one_check,
    "lean": open_lean,
}


def open_series(
    paths: list[Path],
    busy_loop: bool,
    openers: list[Callable[[Path], sqlite3.Connection]],
    threads: int = 1,
) -> list[tuple[list[float], list[float]]]:
    """Open (and close) each file on a worker thread, the openers taking turns file by
    file (so a change of the box's load hits them alike); per opener the wall times and
    the worker's CPU times of its opens."""
    out: list[tuple[list[float], list[float]]] = [([], []) for _ in openers]

    def worker(share: list[Path]) -> None:
        for n, path in enumerate(share):
            walls, cpus = out[n % len(openers)]
            c0, t0 = time.thread_time(), time.perf_counter()
            conn = openers[n % len(openers)](path)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.thread_time() - c0)
            conn.close()

    stop = threading.Event()
    workers = [threading.Thread(target=worker, args=(paths[k::threads],)) for k in range(threads)]
    busy_thread = threading.Thread(target=busy, args=(stop,))
    if busy_loop:
        busy_thread.start()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    stop.set()
    if busy_loop:
        busy_thread.join()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gil_open", description=__doc__)
    parser.add_argument("--opens", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--intervals", default="0.005,0.002,0.001,0.0005")
    parser.add_argument("--variants", default="before,one_check,lean")
    parser.add_argument("--threads", type=int, default=1, help="opening at once")
    args = parser.parse_args(argv)
    intervals = [float(x) for x in args.intervals.split(",")]
    with tempfile.TemporaryDirectory(prefix="rhythm-gil-open-") as tmp_name:
        tmp = Path(tmp_name)
        template = asyncio.run(make_template(tmp / "template"))
        data = tmp / "data"
        data.mkdir()
        paths = [data / org_id / TENANT_FILE for org_id in copy_tenants(data, template, args.opens)]
        variants = args.variants.split(",")
        openers = [VARIANTS[v] for v in variants]
        open_series(paths[:20], False, openers)  # warm: migrations loaded, page cache
        for n in range(args.rounds):
            for interval, busy_loop in itertools.product(intervals, (False, True)):
                sys.setswitchinterval(interval)
                results = open_series(paths, busy_loop, openers, args.threads)
                for variant, (walls, cpus) in zip(variants, results, strict=True):
                    walls.sort()
                    print(f"round {n + 1} {args.threads} thread(s) switch {interval * 1000:g} ms "
                          f"{'busy' if busy_loop else 'idle'} loop, {variant:<9}: open p50 "
                          f"{statistics.median(walls) * 1e6:,.0f} us, p90 "
                          f"{walls[int(len(walls) * 0.9)] * 1e6:,.0f} us, worker CPU p50 "
                          f"{statistics.median(cpus) * 1e6:,.0f} us, mean "
                          f"{statistics.fmean(cpus) * 1e6:,.0f} us, load "
                          f"{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
