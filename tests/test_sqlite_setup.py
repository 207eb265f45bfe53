"""SQLite's memory statistics are turned off only while nothing of SQLite is alive.

Each case runs in a fresh interpreter: turning them off shuts SQLite down and starts
it again, which this test process (with its open databases) must never do."""

from __future__ import annotations

import subprocess
import sys

from tests.test_contract import ROOT

PRELUDE = """
import ctypes, sqlite3, _sqlite3
from tracker.storage.sqlite_setup import stop_memory_statistics
lib = ctypes.CDLL(_sqlite3.__file__)
lib.sqlite3_memory_used.restype = ctypes.c_int64
"""


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PRELUDE + code], cwd=ROOT, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_statistics_go_off_before_the_first_connection_and_sqlite_works() -> None:
    out = run(
        """
assert stop_memory_statistics() is True
assert stop_memory_statistics() is True  # once per process; a second call does nothing
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (x)")
conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(1000)])
print(lib.sqlite3_memory_used(), conn.execute("SELECT sum(x) FROM t").fetchone()[0])
"""
    )
    assert out == "0 499500"  # nothing counted: the statistics are off


def test_a_live_connection_keeps_sqlite_as_it_was() -> None:
    out = run(
        """
conn = sqlite3.connect(":memory:")
conn.execute("CREATE TABLE t (x)")
assert stop_memory_statistics() is False  # shutting SQLite down now would break conn
conn.execute("INSERT INTO t VALUES (7)")
print(lib.sqlite3_memory_used() > 0, conn.execute("SELECT x FROM t").fetchone()[0])
"""
    )
    assert out == "True 7"
