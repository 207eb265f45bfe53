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
grows; the first checkpoint after it ends (inside a writer's COMMIT) pays that
back. Measured, most of that bill was the checkpoint's fsync of the grown WAL
(hundreds of MB never flushed, since at synchronous=NORMAL commits do not
fsync) and the truncation of the WAL file afterwards. So the copy flushes the
source's `-wal` while it holds the snapshot (`WalFlusher`), off the server's
threads, and the server shrinks a grown WAL in steps (tracker.storage.database).
Figures: docs/operations-data.md "the stall".

The copy itself is written with synchronous=OFF and written out in slices while
SQLite writes it (`WriteBehind`), and so is the source's WAL while it grows under
the snapshot: one flush of a multi-GB file at the end kept the disk busy for
0.6-1.2 s, and the server's writer waited behind it. The copy is still fsynced
whole before it is renamed into place, and the WAL once before the snapshot ends.

Every function here does blocking I/O: callers run them off the event loop.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import math
import os
import shutil
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

from tracker.errors import ServiceUnavailable
from tracker.storage.faults import is_busy
from tracker.storage.files import FILE_MODE, private_dir

CHUNK = 1024 * 1024
#: How long a reader waits for a locked database. A WAL reader waits only for another
#: connection's recovery (short); a file a server holds exclusively stays locked.
BUSY_TIMEOUT_S = 5.0
# While a copy holds its snapshot, fsync the source's WAL this often; inf: once, at the end
# (measured: flushing every second made the copy up to twice as slow, for no better
# catch-up; docs/operations-data.md "the stall").
WAL_FLUSH_EVERY_S = math.inf
# While SQLite writes a copy, push it to disk every this many bytes (0: off, one fsync
# at the end only), so the final fsync has at most about a slice left to write.
COPY_FLUSH_SLICE = 32 * 1024 * 1024
COPY_FLUSH_POLL_S = 0.02  # how often the copy's (and the WAL's) size is looked at
# The same for the source's WAL while the copy holds its snapshot (0: only the last flush).
WAL_FLUSH_SLICE = 32 * 1024 * 1024


class Head(NamedTuple):
    """Where a database stands: its schema version, last change seq and sync epoch."""

    schema_version: int
    seq: int
    epoch: str | None


def read_only(path: Path) -> sqlite3.Connection:
    """A connection that can read a live database (even one a server is writing)."""
    uri = Path(os.path.abspath(path)).as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=BUSY_TIMEOUT_S)
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


def fsync_wal(db: Path) -> None:
    """fsync the `-wal` of a live database, if it has one.

    Safe beside live connections to it, this process's included: SQLite takes its
    POSIX locks on the database file and on `-shm`, never on `-wal`, so opening and
    closing `-wal` here drops no lock (doing that to `-shm` or the database file
    would: docs/operations-data.md).
    """
    try:
        fd = os.open(db.with_name(db.name + "-wal"), os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_SYNC_FILE_RANGE_WAIT_BEFORE = 1
_SYNC_FILE_RANGE_WRITE = 2
_SYNC_FILE_RANGE_WAIT_AFTER = 4


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """Linux's sync_file_range(2), which Python's os module does not offer."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()


def write_out(fd: int, start: int, length: int) -> None:
    """Write a byte range of a file to disk and wait for it, without a journal commit.

    sync_file_range writes the range's dirty pages and waits for them, but commits no
    file system metadata, so it neither forces a journal commit the server's fsyncs
    would queue behind nor makes the file durable (the caller's final fsync does).
    Where it does not exist, fdatasync (the whole file, and its metadata) stands in.
    """
    if _sync_file_range is not None:
        flags = _SYNC_FILE_RANGE_WAIT_BEFORE | _SYNC_FILE_RANGE_WRITE | _SYNC_FILE_RANGE_WAIT_AFTER
        if _sync_file_range(fd, start, length, flags) == 0:
            return
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ESPIPE):
            raise OSError(err, os.strerror(err))
    getattr(os, "fdatasync", os.fsync)(fd)  # macOS has no fdatasync


class WriteBehind:
    """While another writer (SQLite) fills the file open as `fd`: each time it has grown
    by `slice_bytes` since the last look that wrote, write the file's dirty pages out
    (`write_out`) and wait for them, from a thread.

    Why: the copy is written with synchronous=OFF, so a multi-GB copy would otherwise
    sit dirty in the page cache until one fsync at the end, which kept the disk busy
    for 0.6-1.2 s while the server's own checkpoint fsyncs waited behind it
    (docs/operations-data.md); the same holds for the source's WAL under the copy's
    snapshot (`WalFlusher`). Written out in slices, the final fsync finds at most about
    a slice left, and no single flush holds the disk for more than a slice's writing.
    The copy (`backup`) releases the GIL, so this thread runs beside it. A failure
    stops the write-behind only: the final fsync is what makes the file durable.
    """

    def __init__(self, fd: int, slice_bytes: int | None = None, poll_s: float | None = None):
        self.fd = fd
        self.slice_bytes = COPY_FLUSH_SLICE if slice_bytes is None else slice_bytes  # 0: off
        self.poll_s = COPY_FLUSH_POLL_S if poll_s is None else poll_s
        self.flushed_to = 0  # the file's size at the last write-out
        self.slices = 0
        self.error: OSError | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.step()
            except OSError as exc:
                self.error = exc
                return

    def step(self) -> None:
        """If the file grew by a slice or more, write out every dirty page of it (the
        range from 0: SQLite also rewrites pages it wrote before, e.g. page 1)."""
        size = os.fstat(self.fd).st_size
        if size - self.flushed_to < self.slice_bytes:
            return
        write_out(self.fd, 0, size)
        self.flushed_to = size
        self.slices += 1

    def __enter__(self) -> WriteBehind:
        if self.slice_bytes > 0:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class WalFlusher:
    """While a snapshot of `db` is held: fsync its WAL on leaving, just before the
    snapshot is let go; meanwhile write it out in slices as it grows (`WriteBehind`,
    every `slice_bytes`), and fsync it every `every_s` from a thread, if finite.

    A snapshot stops the server's checkpoints, and at synchronous=NORMAL the server's
    commits never fsync the WAL, so everything it writes meanwhile stays dirty in the
    page cache until its first checkpoint after the snapshot, which flushes it inside
    a writer's COMMIT (0.3-1 s at 200,000 issues, measured). Flushed here, that
    checkpoint finds the WAL (nearly) clean. The last flush alone held the disk (and
    the writer) for 0.8-1 s when the WAL had grown to 2-3 GB under a 1,000,000-issue
    copy, so the WAL is written out in slices as it grows, without journal commits,
    and the last flush finds little left. The copy (`backup`) releases the GIL.
    """

    def __init__(
        self, db: Path, every_s: float | None = None, slice_bytes: int | None = None
    ) -> None:
        self.db = db
        self.every_s = WAL_FLUSH_EVERY_S if every_s is None else every_s  # <= 0: off
        self.slice_bytes = WAL_FLUSH_SLICE if slice_bytes is None else slice_bytes  # 0: off
        self.flushes = 0
        self.behind: WriteBehind | None = None
        self._wal_fd: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-flush", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.flush()

    def flush(self) -> None:
        """One fsync; a failure only costs the server its head start, never the copy."""
        try:
            fsync_wal(self.db)
        except OSError:
            return
        self.flushes += 1

    def __enter__(self) -> WalFlusher:
        if self.every_s <= 0:
            return self
        if 0 < self.every_s < math.inf:  # inf: only the last flush, on leaving
            self._thread.start()
        if self.slice_bytes > 0:
            with contextlib.suppress(FileNotFoundError):  # no WAL: nothing grows
                # -wal carries no POSIX locks (see fsync_wal): closing this fd is safe
                self._wal_fd = os.open(self.db.with_name(self.db.name + "-wal"), os.O_RDONLY)
                self.behind = WriteBehind(self._wal_fd, self.slice_bytes).__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.every_s <= 0:
            return
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.behind is not None:
            self.behind.__exit__(None, None, None)
        if self._wal_fd is not None:
            os.close(self._wal_fd)
        if kind is None:
            self.flush()  # the last stretch, while the snapshot still holds the checkpoint


def copy_database(src: Path, dest: Path) -> int:
    """One consistent copy of `src` into the new file `dest`, page for page; returns how
    many slices of it were written out while it was copied (`WriteBehind`)."""
    conn = read_only(src)
    try:
        # The read lock first: a file another process holds exclusively is refused here
        # (busy, after the timeout); `backup()` would retry a busy source forever.
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
        # Created here so that this process holds an fd of its own for the flusher. It
        # is closed only after SQLite's connection: closing an fd of a file drops every
        # POSIX lock the process holds on it, SQLite's included.
        fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            target = sqlite3.connect(dest, isolation_level=None)
            try:
                target.execute("PRAGMA journal_mode = OFF")  # a new file: nothing to roll back
                target.execute("PRAGMA synchronous = OFF")  # fsynced once, by the caller
                with WalFlusher(src), WriteBehind(fd) as flusher:
                    conn.backup(target)  # pages=-1: one step, one read snapshot, no restarts
            finally:
                target.close()
        finally:
            os.close(fd)
    finally:
        conn.close()  # the snapshot ends: the server's checkpoints can pass again
    return flusher.slices


def snapshot(src: Path, dest: Path) -> None:
    """Copy the database `src` (live or not) to `dest`: one consistent snapshot, in WAL
    mode like every Rhythm database, checked, fsynced, then renamed into place."""
    tmp = partial_of(dest)
    tmp.unlink(missing_ok=True)
    private_dir(dest.parent, parents=True)
    try:
        copy_database(src, tmp)
    except sqlite3.OperationalError as exc:
        tmp.unlink(missing_ok=True)
        if is_busy(exc):  # a running server holds its open tenants exclusively
            raise ServiceUnavailable(
                f"{src} is held by another process (a running server holds the tenants it "
                "has open; its backup socket did not answer): try again, or stop it"
            ) from exc
        raise
    seal(tmp, dest, src)


def partial_of(dest: Path) -> Path:
    """Where a copy is written before it is sealed (`seal`) under its name."""
    return dest.with_name(dest.name + ".partial")


def seal(tmp: Path, dest: Path, src: Path) -> None:
    """Make the finished copy `tmp` of `src` a Rhythm database at `dest`: WAL mode,
    `quick_check`, fsync, rename into place."""
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
