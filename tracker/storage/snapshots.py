"""Consistent copies of live SQLite files and the file plumbing of backups.

See docs/operations-data.md.

A copy is taken with SQLite's backup API in ONE step (`pages=-1`) from a
separate *read-only* connection: one read snapshot, so the copy is consistent
and the server's writers are never blocked by it, and pages are copied
verbatim, which holds the snapshot for less time than `VACUUM INTO` (stepped
backups restart whenever another connection writes: measured in
docs/operations-data.md). A read-only connection neither checkpoints nor resets
the WAL (it cannot even run `wal_checkpoint`), so it cannot take part in the
WAL-reset race that makes the server keep one connection per file
(docs/reliability.md).

While a snapshot is held the server's checkpoints cannot pass it and the WAL
grows; the first checkpoint after it ends (inside a writer's COMMIT) would copy
all of that back at once. `Relay` splits that catch-up into slices: it holds a
few later read snapshots during the copy and lets them go one at a time,
oldest first, each after the server's checkpoint has reached it.

Every function here does blocking I/O: callers run them off the event loop.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import struct
import threading
import time
from pathlib import Path
from typing import NamedTuple

from tracker.storage.files import FILE_MODE, private_dir

CHUNK = 1024 * 1024
# Later snapshots a Relay holds. A WAL has 5 read-mark slots, the first only for readers
# of a fully checkpointed file: the copy's snapshot takes one, the relay three; the
# server's own connection then shares the newest mark (SQLite allows that).
RELAY_READERS = 3
RELAY_TICK = 0.25  # seconds between relay snapshots while a copy runs
RELAY_WAIT = 2.0  # longest wait for the server's checkpoint to reach one relay mark


class Head(NamedTuple):
    """Where a database stands: its schema version, last change seq and sync epoch."""

    schema_version: int
    seq: int
    epoch: str | None


def read_only(path: Path, *, any_thread: bool = False) -> sqlite3.Connection:
    """A connection that can read a live database (even one a server is writing)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    conn = sqlite3.connect(
        uri, uri=True, isolation_level=None, timeout=30, check_same_thread=not any_thread
    )
    conn.execute("PRAGMA trusted_schema = OFF")
    return conn


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fsync_file(path)  # a directory opens O_RDONLY too


_SHM_FDS: dict[str, int] = {}  # never closed: see _shm_frames


def _shm_frames(db: Path) -> tuple[int, int] | None:
    """(frames in the WAL, frames checkpointed) from the WAL index, or None without one.

    The `-shm` layout is SQLite's documented file format (walformat.html): two copies
    of the 48-byte header (`mxFrame` at byte 16), then `nBackfill` at byte 96, in the
    host's byte order. Read only, as advice: it decides how long to wait, nothing else.
    The descriptor stays open for the life of the process: closing any descriptor of a
    file drops every POSIX lock the process holds on it, and SQLite's WAL read locks
    are such locks on this file (measured: closing it after each read let the server
    checkpoint under a held snapshot, and the copy came out corrupt).
    """
    key = os.path.abspath(f"{db}-shm")
    fd = _SHM_FDS.get(key)
    if fd is None:
        try:
            fd = os.open(key, os.O_RDONLY)
        except OSError:
            return None
        _SHM_FDS[key] = fd
    head = os.pread(fd, 100, 0)
    if len(head) < 100:
        return None
    return struct.unpack_from("=I", head, 16)[0], struct.unpack_from("=I", head, 96)[0]


class _Held:
    """A read-only connection inside a read transaction: its snapshot stays pinned."""

    def __init__(self, db: Path) -> None:
        self.conn = read_only(db, any_thread=True)  # taken on the relay's thread, closed on ours
        try:
            self.conn.execute("BEGIN")
            self.conn.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()  # starts the read
        except sqlite3.Error:
            self.conn.close()
            raise
        self.at = time.monotonic()
        frames = _shm_frames(db)
        self.frames = frames[0] if frames else 0  # the WAL end this snapshot reads up to

    def release(self) -> None:
        self.conn.close()


class Relay:
    """Later snapshots held during a long copy, let go oldest first after it.

    Why: the server checkpoints inside a writer's COMMIT (autocheckpoint). While the
    copy's snapshot is held no checkpoint passes it, so the WAL grows by everything
    written meanwhile, and the first commit after the copy ends would copy all of it
    into the database: seconds of stall for a big tenant. With later snapshots still
    held, that checkpoint can only go up to the oldest of them; releasing them one at
    a time, each once the server's checkpoint has reached it, splits the catch-up into
    `RELAY_READERS + 1` slices. Only read-only connections: nothing here checkpoints.
    Every `RELAY_TICK` a new snapshot is taken and, when over `RELAY_READERS`, the one
    whose removal leaves the smallest gap is dropped, so the held ones stay spread
    evenly over the copy whatever its length.
    """

    def __init__(self, db: Path, started: float) -> None:
        self.db = db
        self.started = started
        self.held: list[_Held] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="snapshot-relay", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(RELAY_TICK):
            try:
                self.held.append(_Held(self.db))
            except sqlite3.Error:
                continue  # no snapshot this tick (busy): the copy goes on regardless
            if len(self.held) > RELAY_READERS:
                times = [self.started] + [h.at for h in self.held]
                gaps = [times[i + 2] - times[i] for i in range(len(self.held) - 1)]
                self.held.pop(gaps.index(min(gaps))).release()

    def stop(self) -> None:
        """No more snapshots (call when the copy's data is read)."""
        self._stop.set()
        self._thread.join()

    def release(self, start_frames: int) -> None:
        """Let the held snapshots go, oldest first, each after the checkpoint reached it
        (or `RELAY_WAIT` passed). `start_frames`: the WAL end when the copy began."""
        try:
            for held in self.held:
                deadline = time.monotonic() + RELAY_WAIT
                before = _shm_frames(self.db)
                while before is not None and held.frames > start_frames:
                    now = _shm_frames(self.db)
                    if now is None or now[1] >= held.frames or now[1] != before[1]:
                        break  # checkpointed up to this mark, or one pass went as far as it can
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.01)
                held.release()
        finally:
            for held in self.held:
                held.release()
            self.held.clear()


def copy_database(src: Path, dest: Path) -> None:
    """One consistent copy of `src` into the new file `dest` (page for page)."""
    began = time.monotonic()
    frames = _shm_frames(src)
    conn = read_only(src)
    relay = Relay(src, began) if frames is not None else None
    try:
        target = sqlite3.connect(dest, isolation_level=None)
        try:
            target.execute("PRAGMA journal_mode = OFF")  # a new file: nothing to roll back
            target.execute("PRAGMA synchronous = OFF")  # fsynced once, by the caller
            conn.backup(target)  # pages=-1: one step, one read snapshot
        finally:
            target.close()
    finally:
        if relay is not None:
            relay.stop()
        conn.close()  # the copy's snapshot ends; the relay's older marks still hold
        if relay is not None:
            relay.release(frames[0] if frames else 0)


def snapshot(src: Path, dest: Path) -> None:
    """Copy the database `src` (live or not) to `dest`: one consistent snapshot, in WAL
    mode like every Rhythm database, checked, fsynced, then renamed into place."""
    tmp = dest.with_name(dest.name + ".partial")
    tmp.unlink(missing_ok=True)
    private_dir(dest.parent, parents=True)
    copy_database(src, tmp)
    os.chmod(tmp, FILE_MODE)
    copy = sqlite3.connect(tmp, isolation_level=None)
    try:
        copy.execute("PRAGMA journal_mode = WAL")  # the file as Rhythm opens it
        faults = [row[0] for row in copy.execute("PRAGMA quick_check") if row[0] != "ok"]
        if faults:
            raise sqlite3.DatabaseError(f"the copy of {src} is not sound: {faults[0]}")
    finally:
        copy.close()  # the last connection checkpoints: one file, no -wal left
    fsync_file(tmp)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)


def head(conn: sqlite3.Connection) -> Head:
    """The schema version, change-log head and epoch of a database (tenant or system)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    seq = 0
    if "changes" in tables:
        seq = int(conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0])
    epoch = None
    if "sync_state" in tables:
        found = conn.execute("SELECT epoch FROM sync_state WHERE id = 1").fetchone()
        epoch = str(found[0]) if found else None
    return Head(version, seq, epoch)


def head_of(path: Path) -> Head:
    conn = read_only(path)
    try:
        return head(conn)
    finally:
        conn.close()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy_file(src: Path, dest: Path) -> str:
    """Copy a file (0600), fsync it, and return the SHA-256 of the bytes written."""
    private_dir(dest.parent, parents=True)
    tmp = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with open(src, "rb") as source, os.fdopen(fd, "wb") as target:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            target.write(chunk)
        target.flush()
        os.fsync(target.fileno())
    os.replace(tmp, dest)
    return digest.hexdigest()


def remove_tree(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
