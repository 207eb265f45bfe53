"""Backup snapshots under a writer in another process (docs/operations-data.md).

The writer and checkpointer run in a child process, as the server does beside
`rhythm backup`: within one process SQLite tracks WAL locks itself.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracker.storage import snapshots

WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t(v) VALUES (?)", (n,))
    conn.execute("INSERT INTO t(v) VALUES (?)", (-n,))
    conn.execute("COMMIT")
    n += 1
"""

CHECKPOINT = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=0)
conn.execute("INSERT INTO t(v) VALUES (0)")
print(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
"""


def make_db(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v INTEGER, pad BLOB)")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO t(v, pad) SELECT 0, randomblob(900) FROM n",
        (rows,),
    )
    conn.close()


def checkpoint_busy(db: Path) -> int:
    """1 when a TRUNCATE checkpoint from another process is blocked by a reader."""
    out = subprocess.run(
        [sys.executable, "-c", CHECKPOINT, str(db)], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def test_copy_taken_while_another_process_writes_is_consistent(tmp_path: Path) -> None:
    db = tmp_path / "live.db"
    make_db(db, 30_000)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), "3"])
    try:
        time.sleep(0.3)
        for i in range(3):
            dest = tmp_path / f"copy-{i}.db"
            snapshots.snapshot(db, dest)  # raises if quick_check finds a fault
            conn = sqlite3.connect(dest)
            total, count = conn.execute("SELECT sum(v), count(*) FROM t").fetchone()
            conn.close()
            assert total == 0 and count % 2 == 0  # whole transactions only
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == 0
    assert checkpoint_busy(db) == 0  # the copy left no snapshot behind


def test_flushing_the_wal_keeps_the_snapshot_held(tmp_path: Path) -> None:
    """`-wal` is opened and closed beside a live read snapshot in this process: no lock
    may be dropped by that (closing an fd on `-shm` would drop SQLite's read lock)."""
    db = tmp_path / "live.db"
    make_db(db, 2_000)
    writer = sqlite3.connect(db, isolation_level=None)  # open: the WAL stays
    writer.execute("INSERT INTO t(v, pad) VALUES (0, randomblob(5000))")
    assert Path(f"{db}-wal").stat().st_size > 0
    reader = snapshots.read_only(db)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()
    with snapshots.WalFlusher(db, every_s=0.01) as flusher:
        time.sleep(0.1)
    assert flusher.flushes >= 3  # periodic flushes, then the last one on leaving
    snapshots.fsync_wal(db)
    assert checkpoint_busy(db) == 1  # still held: a checkpoint cannot pass it
    reader.close()
    assert checkpoint_busy(db) == 0
    writer.close()


def test_flushing_a_database_without_wal_is_a_no_op(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    sqlite3.connect(db).close()
    snapshots.fsync_wal(db)
    assert not Path(f"{db}-wal").exists()


def test_write_behind_writes_a_growing_file_out_in_slices(tmp_path: Path) -> None:
    """The flusher follows a file another writer fills, a slice at a time, and leaves
    its bytes as written."""
    path = tmp_path / "grows.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    chunks = [bytes([i]) * 256 * 1024 for i in range(16)]  # 4 MB
    try:
        with (
            open(path, "r+b", buffering=0) as writer,
            snapshots.WriteBehind(fd, slice_bytes=1024 * 1024, poll_s=0.001) as flusher,
        ):
            for chunk in chunks:
                writer.write(chunk)
                time.sleep(0.01)  # slower than the poll: each slice is seen
    finally:
        os.close(fd)
    assert flusher.slices >= 2
    assert 2 * 1024 * 1024 <= flusher.flushed_to <= len(chunks) * 256 * 1024
    assert path.read_bytes() == b"".join(chunks)


def test_copy_flushed_in_slices_is_the_same_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy written out in slices while SQLite writes it is byte for byte the copy
    written with one fsync at the end, and a sound database."""
    db = tmp_path / "live.db"
    make_db(db, 40_000)  # ~40 MB
    monkeypatch.setattr(snapshots, "COPY_FLUSH_POLL_S", 0.001)
    monkeypatch.setattr(snapshots, "COPY_FLUSH_SLICE", 0)
    whole = tmp_path / "whole.db"
    assert snapshots.copy_database(db, whole) == 0
    monkeypatch.setattr(snapshots, "COPY_FLUSH_SLICE", 256 * 1024)
    slices = []
    for attempt in range(3):  # a busy box may deschedule the 1 ms poll for a whole copy
        sliced = tmp_path / f"sliced-{attempt}.db"
        slices.append(snapshots.copy_database(db, sliced))
        assert sliced.read_bytes() == whole.read_bytes()
        if slices[-1]:
            break
    assert max(slices) >= 1  # written out while it was copied
    done = tmp_path / "done.db"
    snapshots.snapshot(db, done)  # the whole path: check, fsync, rename
    conn = sqlite3.connect(done)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 40_000
    finally:
        conn.close()
    assert not Path(f"{done}.partial").exists()


def test_wal_written_behind_under_a_held_snapshot(tmp_path: Path) -> None:
    """The WAL growing under a held snapshot is written out in slices from an fd this
    process opens and closes beside the snapshot: the snapshot stays held."""
    db = tmp_path / "live.db"
    make_db(db, 2_000)
    writer = sqlite3.connect(db, isolation_level=None)  # open: the WAL stays
    writer.execute("INSERT INTO t(v, pad) VALUES (0, randomblob(5000))")
    reader = snapshots.read_only(db)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM t").fetchone()
    with snapshots.WalFlusher(db, slice_bytes=256 * 1024) as flusher:
        assert flusher.behind is not None
        flusher.behind.poll_s = 0.001
        for _ in range(40):  # ~4 MB of WAL, slower than the poll
            writer.execute("INSERT INTO t(v, pad) VALUES (0, randomblob(100000))")
            time.sleep(0.005)
    assert flusher.behind.slices >= 2 and flusher.behind.error is None
    assert flusher.flushes == 1  # and the last flush, on leaving
    assert checkpoint_busy(db) == 1  # still held: no lock was dropped
    reader.close()
    assert checkpoint_busy(db) == 0
    writer.close()
