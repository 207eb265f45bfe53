"""What SQLite's memory statistics cost concurrent tenant opens (docs/tenants.md).

    python -m bench.sqlite_memstatus [--threads 1,4,8] [--seconds 4] [--rounds 3]

N threads each open a migrated tenant file (made by the server's own code,
bench/tenant_seed.py; 64 copies), run the tenant pragma script and the projects
query, and close it, for `--seconds`. Each measurement runs in a fresh interpreter,
with SQLite's memory statistics on (its default) or off (as `rhythm serve` sets them,
tracker/storage/sqlite_setup.py), alternating; printed: opens per second and process
CPU per open.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.tenant_seed import make_template

CHILD = """
import sqlite3, sys, threading, time
from tracker.storage.sqlite_setup import stop_memory_statistics
statistics, threads, folder = sys.argv[1], int(sys.argv[2]), sys.argv[4]
seconds = float(sys.argv[3])
if statistics == "off":
    assert stop_memory_statistics()
files = [f"{folder}/{i}.db" for i in range(64)]
PRAGMAS = "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF;"
counts = [0] * threads
stop = time.monotonic() + seconds

def work(k):
    i = k
    while time.monotonic() < stop:
        conn = sqlite3.connect(files[i % 64], isolation_level=None, check_same_thread=False)
        conn.executescript(PRAGMAS)
        conn.execute("SELECT id FROM projects WHERE deleted_at IS NULL").fetchall()
        conn.close()
        counts[k] += 1
        i += threads

began, cpu = time.monotonic(), time.process_time()
workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
n = sum(counts)
print(f"{n / (time.monotonic() - began):.0f} {(time.process_time() - cpu) / n * 1e6:.0f}")
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlite_memstatus", description=__doc__)
    parser.add_argument("--threads", default="1,4,8")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rhythm-memstatus-") as tmp:
        template = asyncio.run(make_template(Path(tmp) / "template"))
        files = Path(tmp) / "files"
        files.mkdir()
        for i in range(64):
            shutil.copy(template, files / f"{i}.db")
        print("threads  statistics  opens/s  CPU per open")
        for threads in (int(t) for t in args.threads.split(",")):
            for _ in range(args.rounds):
                for statistics in ("on", "off"):
                    out = subprocess.run(
                        [sys.executable, "-c", CHILD, statistics, str(threads),
                         str(args.seconds), str(files)],
                        capture_output=True, text=True, check=True,
                    ).stdout.split()  # fmt: skip
                    print(f"{threads:7d}  {statistics:>10}  {out[0]:>7}  {out[1]:>9} us",
                          flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
