"""Storage faults -> the errors a client can act on: 507 (disk full) or 503 (read-only, I/O).

Without this a full or read-only disk surfaced as a 500 (or, while opening a
tenant, as 404). SQLite's primary result code tells most cases apart; an I/O
error is ambiguous (a full tmpfs fails growing the -shm with IOERR_SHMSIZE), so
it is called "full" when the file system has no space left. Nothing is sticky:
the next request tries the disk again, so service recovers by itself.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from tracker.errors import RhythmError, StorageFull, StorageUnavailable

SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 8, 10, 13, 14
RETRY_FULL_SECONDS = 60
RETRY_UNAVAILABLE_SECONDS = 30
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_UNAVAILABLE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def is_busy(exc: sqlite3.Error) -> bool:
    """SQLite found the file locked by another connection (SQLITE_BUSY and its variants)."""
    return getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding `path`."""
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def full() -> StorageFull:
    return StorageFull("the disk is full; writes are refused until space is freed",
                       retry_after=RETRY_FULL_SECONDS)  # fmt: skip


def unavailable(what: str) -> StorageUnavailable:
    return StorageUnavailable(
        f"storage is not writable ({what}); reads still work", retry_after=RETRY_UNAVAILABLE_SECONDS
    )


def storage_error(exc: BaseException, path: Path) -> RhythmError | None:
    """The user-facing error for a storage fault, or None when `exc` is not one."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code == SQLITE_FULL:
            return full()
        if code in (SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN):
            if code != SQLITE_READONLY and _no_space(path):
                return full()
            return unavailable(getattr(exc, "sqlite_errorname", "I/O error").lower())
        return None
    if isinstance(exc, OSError):
        if exc.errno in _FULL_ERRNOS:
            return full()
        if exc.errno in _UNAVAILABLE_ERRNOS:
            return unavailable(exc.strerror or "I/O error")
    return None


def _no_space(path: Path) -> bool:
    try:
        return free_bytes(path if path.is_dir() else path.parent) == 0
    except OSError:
        return False
