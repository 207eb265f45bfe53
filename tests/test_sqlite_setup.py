"""SQLite's memory statistics are turned off only while nothing of SQLite is alive.

Each case runs in a fresh interpreter: turning them off shuts SQLite down and starts
it again, which this test process (with its open databases) must never do."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.test_contract import ROOT
from tracker.storage.database import Database
from tracker.storage.sqlite_setup import (
    connection_handle,
    keep_wal_files,
    opened_read_only,
    run_script_in_one_release,
)

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


async def test_a_database_keeps_its_wal_files_empty_between_opens(tmp_path: Path) -> None:
    """Persistent WAL: a clean close checkpoints everything and leaves `-wal` at zero
    bytes and `-shm` in place, so the next open creates no files; the data is intact
    and a write after the reopen lands."""
    path = tmp_path / "t.db"
    db = await Database.open(path, create=True)
    await db.write(lambda c: c.execute("CREATE TABLE t (n INTEGER)"))
    await db.write(lambda c: c.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(500)]))
    assert Path(f"{path}-wal").stat().st_size > 0
    await db.close(checkpoint=False)  # SQLite's own close: checkpoint, then truncate
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    assert wal.stat().st_size == 0 and shm.exists()
    inodes = (wal.stat().st_ino, shm.stat().st_ino)
    alone = tmp_path / "alone.db"  # the main file without its companions holds every row
    shutil.copyfile(path, alone)
    plain = sqlite3.connect(alone)
    assert plain.execute("SELECT count(*), sum(n) FROM t").fetchone() == (500, 124750)
    plain.close()
    db = await Database.open(path, create=False)
    assert (wal.stat().st_ino, shm.stat().st_ino) == inodes  # the same files, kept
    await db.write(lambda c: c.execute("INSERT INTO t VALUES (1000)"))
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM t").fetchone()[0]) == 501
    await db.close()


def test_the_handle_is_used_only_when_it_names_the_file(tmp_path: Path) -> None:
    """The `sqlite3 *` read from the connection object is checked against the file it
    opened (a wrong path means no handle), and tells a read-only fallback apart."""
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path)
    try:
        handle = connection_handle(conn, str(path))
        assert handle is not None and keep_wal_files(handle) is True
        assert connection_handle(conn, str(tmp_path / "b.db")) is None
        assert opened_read_only(handle) is False
    finally:
        conn.close()
    path.chmod(0o400)
    conn = sqlite3.connect(f"{path.as_uri()}?mode=rw", uri=True)  # SQLite falls back to read-only
    try:
        handle = connection_handle(conn, str(path))
        assert handle is not None
        assert opened_read_only(handle) is (os.geteuid() != 0)  # root ignores file modes
    finally:
        conn.close()


def test_a_script_in_one_release_runs_every_statement_or_says_it_failed(tmp_path: Path) -> None:
    """Pragmas and a check run through `sqlite3_exec` on the connection's own handle; a
    failing statement is a False (the caller runs the script again through `sqlite3`),
    and the connection stays usable either way."""
    path = tmp_path / "a.db"
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        handle = connection_handle(conn, str(path))
        assert handle is not None
        ok = run_script_in_one_release(
            handle, "PRAGMA foreign_keys = ON; PRAGMA user_version = 7; SELECT 1;"
        )
        assert ok is True
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7
        assert run_script_in_one_release(handle, "SELECT json('not json');") is False
        assert run_script_in_one_release(handle, "SELECT * FROM nowhere;") is False
        assert conn.execute("SELECT 2").fetchone()[0] == 2
        assert conn.in_transaction is False
    finally:
        conn.close()
