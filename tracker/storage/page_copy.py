"""A copy of a live database taken in page batches on the connection that owns it.

See docs/operations-data.md, "Eighth session: backup in page batches on the owning
connection".

SQLite's online-backup API copies a database `pages` at a time
(`sqlite3_backup_step`). When the source is written *through the connection the
backup reads from*, SQLite writes each changed page into the copy as the write
commits (`sqlite3BackupUpdate`, called for every frame appended to the WAL), so no
read snapshot is held between steps: checkpoints pass, the WAL does not grow, and
there is no catch-up checkpoint afterwards. The server runs one step per unit of
work on the database's own thread, so its writers interleave between batches and
wait at most one batch. (From another connection, every write would restart the
copy from page 1; that is why the old path held one snapshot for the whole copy.)

Python's `Connection.backup()` runs every step in one call, so the calls go
through ctypes. `CDLL` releases the GIL around each call: a step is milliseconds
of I/O, during which the event loop and other tenants' threads run.

A ROLLBACK of a transaction that dirtied pages restarts every backup of that
connection from page 1 (SQLite's `pagerUndoCallback`: in WAL mode it cannot undo
pages it already mirrored). `PageCopy.restarts` counts them.

Everything here blocks; `PageCopy` methods run one at a time, on the source
database's thread except `release` (the destination connection is used by no one
else).
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
from pathlib import Path

from tracker.storage import snapshots
from tracker.storage.files import FILE_MODE
from tracker.storage.sqlite_setup import connection_handle, handles_available, load_sqlite

_SQLITE_OK = 0
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
_SQLITE_DONE = 101


class CopyUnavailable(Exception):
    """The stepped copy cannot run in this process (no SQLite handle through ctypes)."""


def _library() -> ctypes.CDLL | None:
    """`CDLL`: each call releases the GIL (a step copies pages for milliseconds)."""
    backup = [ctypes.c_void_p]
    return load_sqlite(
        ctypes.CDLL,
        {
            "sqlite3_backup_init": (
                [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p],
                ctypes.c_void_p,
            ),
            "sqlite3_backup_step": ([ctypes.c_void_p, ctypes.c_int], ctypes.c_int),
            "sqlite3_backup_remaining": (backup, ctypes.c_int),
            "sqlite3_backup_pagecount": (backup, ctypes.c_int),
            "sqlite3_backup_finish": (backup, ctypes.c_int),
            "sqlite3_errmsg": ([ctypes.c_void_p], ctypes.c_char_p),
            "sqlite3_errstr": ([ctypes.c_int], ctypes.c_char_p),
        },
    )


_LIB = _library()


def available() -> bool:
    """Whether page copies can run here (the library and connection handles reachable)."""
    return _LIB is not None and handles_available()


class PageCopy:
    """One backup of `source` (an open connection to `source_path`) into the new file
    `dest`: `open`, then `step` until it returns True, then `finish`, all on the source
    connection's thread, then `release` (any thread); `abort` (source's thread) instead
    ends the backup and removes the file."""

    def __init__(self, source: sqlite3.Connection, source_path: Path, dest: Path) -> None:
        self.source = source
        self.source_path = source_path
        self.dest = dest
        self.remaining = 0
        self.pagecount = 0
        self.restarts = 0  # copies begun again from page 1 (a ROLLBACK on the source)
        self.slices = 0  # slices of the copy written out while it grew (WriteBehind)
        self._fd: int | None = None
        self._target: sqlite3.Connection | None = None
        self._backup: int | None = None
        self._behind: snapshots.WriteBehind | None = None

    def open(self) -> None:
        """Create `dest` and start the backup (no page copied yet)."""
        if _LIB is None:
            raise CopyUnavailable("SQLite's backup API is not reachable through ctypes")
        src = connection_handle(self.source, str(self.source_path))
        if src is None:
            raise CopyUnavailable(f"no SQLite handle for {self.source_path}")
        # Our own fd for the write-behind, opened before SQLite's and closed after it:
        # closing an fd of a file drops every POSIX lock the process holds on it.
        self._fd = os.open(self.dest, os.O_RDWR | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            target = sqlite3.connect(self.dest, isolation_level=None, check_same_thread=False)
            self._target = target
            target.execute("PRAGMA journal_mode = OFF")  # a new file: nothing to roll back
            target.execute("PRAGMA synchronous = OFF")  # fsynced once, when sealed
            dest = connection_handle(target, str(self.dest))
            if dest is None:
                raise CopyUnavailable(f"no SQLite handle for {self.dest}")
            backup = _LIB.sqlite3_backup_init(dest, b"main", src, b"main")
            if not backup:
                message = _LIB.sqlite3_errmsg(dest) or b"unknown error"
                raise sqlite3.OperationalError(f"backup of {self.source_path}: {message.decode()}")
            self._backup = backup
            self._behind = snapshots.WriteBehind(self._fd).__enter__()
        except BaseException:
            self.abort()
            raise

    def step(self, pages: int) -> bool:
        """Copy up to `pages` more pages; True once the copy is complete.

        Busy (another process's WAL recovery, say) is not an error: the caller steps
        again later."""
        assert _LIB is not None and self._backup is not None
        before = self.remaining
        rc = _LIB.sqlite3_backup_step(self._backup, pages)
        self.remaining = _LIB.sqlite3_backup_remaining(self._backup)
        self.pagecount = _LIB.sqlite3_backup_pagecount(self._backup)
        if rc == _SQLITE_DONE:
            return True
        if rc in (_SQLITE_OK, _SQLITE_BUSY, _SQLITE_LOCKED):
            if rc == _SQLITE_OK and before and self.remaining > before:
                self.restarts += 1
            return False
        reason = (_LIB.sqlite3_errstr(rc) or b"error").decode()
        raise sqlite3.OperationalError(f"backup of {self.source_path} failed: {reason} ({rc})")

    def finish(self) -> None:
        """End the backup (on the source's thread); then `release` the copy's file."""
        assert _LIB is not None
        backup, self._backup = self._backup, None
        rc = _LIB.sqlite3_backup_finish(backup) if backup else _SQLITE_OK
        if rc not in (_SQLITE_OK, _SQLITE_DONE):
            reason = (_LIB.sqlite3_errstr(rc) or b"error").decode()
            raise sqlite3.OperationalError(f"backup of {self.source_path} failed: {reason}")

    def release(self) -> int:
        """Close the finished copy (not yet checked or fsynced: `snapshots.seal`); from any
        thread, and better not the source's: the write-behind may be writing out a slice,
        which `release` waits for. Returns the slices written out during the copy."""
        self._release()
        return self.slices

    def abort(self) -> None:
        """End the backup, if any, and remove the unfinished copy."""
        backup, self._backup = self._backup, None
        if backup and _LIB is not None:
            _LIB.sqlite3_backup_finish(backup)
        self._release()
        self.dest.unlink(missing_ok=True)

    def _release(self) -> None:
        if self._behind is not None:
            self._behind.__exit__(None, None, None)
            self.slices = self._behind.slices
            self._behind = None
        if self._target is not None:
            self._target.close()
            self._target = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
