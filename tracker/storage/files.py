"""Private files and folders: everything Rhythm creates is 0600 (files) or 0700 (folders).

`_system.db` holds emails and password hashes, `.jwt_secret` signs every token,
and tenant files hold every org's data: none of them is for other local users,
whatever the process umask says. SQLite creates `-wal`/`-shm` with the mode of
the database file, so creating the database file 0600 first covers them too.
"""

from __future__ import annotations

import fcntl
import logging
import os
import stat
from pathlib import Path

from tracker.errors import DataDirError

log = logging.getLogger(__name__)

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path, *, parents: bool = False) -> None:
    """Create a folder 0700 (mkdir's mode is masked by the umask, so chmod after)."""
    path.mkdir(mode=DIR_MODE, parents=parents, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        os.chmod(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create an empty file 0600 if it does not exist yet (before SQLite creates it)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def tighten(path: Path, mode: int) -> None:
    """At start: take group/world access away from an existing file or folder.

    Fixed with one warning line rather than refused: the usual cause is a
    checkout or a copy made under a loose umask, and refusing would only make
    the operator run the same chmod by hand. Refused (DataDirError) when the
    mode cannot be changed, e.g. the file belongs to another user.
    """
    try:
        current = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return
    if not current & 0o077:
        return
    try:
        os.chmod(path, mode)
    except OSError as exc:
        raise DataDirError(
            f"{path} is readable by other users (mode {current:04o}) and cannot be "
            f"made private: {exc.strerror}; run `chmod {mode:o} {path}`"
        ) from exc
    log.warning("%s was mode %04o (readable by other users); changed to %04o", path, current, mode)


def try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on `path` (created 0600), or None
    when another process holds it. Closing the descriptor releases the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
