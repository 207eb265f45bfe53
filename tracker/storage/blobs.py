"""The bytes of attachments: content-addressed files under a tenant's folder.

    <data_dir>/<org_id>/files/ab/cdef…          the file whose SHA-256 is abcdef…
    <data_dir>/<org_id>/files/ab/cdef….thumb.png its thumbnail, made on first request
    <data_dir>/<org_id>/files/.spool/            uploads being received

An upload is streamed into a spool file in the same file system, hashed while
it arrives, fsynced, then renamed to its hash (and the folder fsynced) before
the database row that names it commits: after a crash a row never points at a
missing file; at worst a file has no row (`orphans()`, removed by `rhythm check
--repair`). The same bytes are stored once. No name from a client is ever part
of a path: paths are built from the hash alone, checked to be 64 hex digits.

Every function here does blocking file I/O: callers run them off the event loop.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

FILES = "files"
SPOOL = ".spool"
THUMB_SUFFIX = ".thumb.png"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def files_dir(tenant_dir: Path) -> Path:
    return tenant_dir / FILES


def blob_path(tenant_dir: Path, sha256: str) -> Path:
    """Where the file with this hash lives (ValueError for anything but a hash)."""
    if not _SHA256.match(sha256):
        raise ValueError("not a SHA-256 hex digest")
    return files_dir(tenant_dir) / sha256[:2] / sha256[2:]


def thumbnail_path(tenant_dir: Path, sha256: str) -> Path:
    path = blob_path(tenant_dir, sha256)
    return path.with_name(path.name + THUMB_SUFFIX)


def _mkdir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """One upload being received: write chunks, then `keep()` it under its hash or `drop()` it."""

    def __init__(self, tenant_dir: Path) -> None:
        self.tenant_dir = tenant_dir
        spool_dir = files_dir(tenant_dir) / SPOOL
        _mkdir(spool_dir)
        self.path = spool_dir / f"{os.getpid()}-{os.urandom(8).hex()}"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self.size = 0
        self.head = b""

    def write(self, chunk: bytes) -> None:
        if len(self.head) < 512:
            self.head += chunk[: 512 - len(self.head)]
        self._hash.update(chunk)
        self._file.write(chunk)
        self.size += len(chunk)

    def keep(self) -> str:
        """fsync, move into place under the content's hash; returns the hash."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        sha256 = self._hash.hexdigest()
        target = blob_path(self.tenant_dir, sha256)
        _mkdir(target.parent)
        if target.exists():  # the same bytes are already stored
            self.path.unlink(missing_ok=True)
        else:
            os.replace(self.path, target)
            _fsync_dir(target.parent)
        return sha256

    def drop(self) -> None:
        """Forget a refused or interrupted upload: nothing is left behind."""
        if not self._file.closed:
            self._file.close()
        self.path.unlink(missing_ok=True)


def stored_hashes(tenant_dir: Path) -> Iterator[str]:
    """The hash of every stored file (thumbnails and spool files are not files)."""
    root = files_dir(tenant_dir)
    if not root.is_dir():
        return
    for prefix in sorted(root.iterdir()):
        if prefix.name == SPOOL or not prefix.is_dir():
            continue
        for path in sorted(prefix.iterdir()):
            if not path.name.endswith(THUMB_SUFFIX) and _SHA256.match(prefix.name + path.name):
                yield prefix.name + path.name


def remove_older(tenant_dir: Path, hashes: list[str], grace_seconds: float) -> list[str]:
    """Delete these stored files (and thumbnails) and any spooled upload, when older than
    `grace_seconds`; returns the hashes removed (the repair of orphans)."""
    cutoff = time.time() - grace_seconds
    removed = []
    for sha256 in hashes:
        path = blob_path(tenant_dir, sha256)
        try:
            if path.stat().st_mtime > cutoff:
                continue
        except FileNotFoundError:
            continue
        path.unlink(missing_ok=True)
        thumbnail_path(tenant_dir, sha256).unlink(missing_ok=True)
        removed.append(sha256)
    spool_dir = files_dir(tenant_dir) / SPOOL
    if spool_dir.is_dir():
        for path in spool_dir.iterdir():
            if path.stat().st_mtime <= cutoff:
                path.unlink(missing_ok=True)
    return removed
