"""One SQLite connection owned by one thread; every unit of work is one hop to it.

Why not a connection shared by coroutines (aiosqlite's model, one hop per
statement): coroutines sharing a connection share its transaction, so
interleaved awaits lose updates and a cancelled request can leave the write
lock held (notes/reliability.md §3.2, measured). Here a unit of work is a plain
synchronous function `fn(conn)` that runs start to finish on the connection's
own thread, inside `BEGIN IMMEDIATE … COMMIT` for writes. The single-thread
executor runs units in arrival order, so no two units ever interleave, and the
event loop never waits on SQLite.

Cancellation: a unit not yet started never starts; a unit already running
checks its cancel flag before COMMIT and rolls back instead.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from tracker.errors import QueryTooExpensive, ServiceUnavailable

T = TypeVar("T")
log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
PROGRESS_STEPS = 10_000  # VM steps between deadline checks (~1 ms of work)
WAL_AUTOCHECKPOINT_PAGES = 4_000


class UnitCancelled(Exception):
    """Raised on the writer thread when the awaiting request went away before COMMIT."""


def new_thread() -> ThreadPoolExecutor:
    """A single-thread executor: the one thread that owns a connection."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="db")


async def stop_thread(executor: ThreadPoolExecutor) -> None:
    """Join the thread off the event loop (a join blocks)."""
    await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)


class Database:
    """A SQLite file with its dedicated thread. Open with `Database.open`."""

    def __init__(self, path: Path, name: str, thread: ThreadPoolExecutor | None = None) -> None:
        self.path = path
        self.name = name
        self.leases = 0
        self._executor = thread or new_thread()
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        create: bool,
        synchronous: str = "NORMAL",
        name: str | None = None,
        thread: ThreadPoolExecutor | None = None,
    ) -> Database:
        """Open (or with `create`, create) a database; `mode=rw` never creates a file.

        `thread` reuses an idle single-thread executor (see `detach_thread`), which
        saves starting and joining an OS thread each time the tenant LRU churns.
        """
        db = cls(path, name or path.parent.name, thread)
        try:
            if thread is not None:  # already running: one hop
                await db._call(db._connect, create, synchronous)
            else:
                # The first submit starts the executor's thread and waits until it runs
                # (Thread.start); done from a helper thread so the event loop never blocks
                # on it (measured: a third of loop time when tenants churn through the LRU).
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(
                    None, lambda: db._executor.submit(db._connect, create, synchronous).result()
                )
        except BaseException:
            db._executor.shutdown(wait=False)
            raise
        return db

    def _connect(self, create: bool, synchronous: str) -> None:
        uri = self.path.resolve().as_uri() + ("?mode=rwc" if create else "?mode=rw")
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")  # persistent in the file
        conn.execute(f"PRAGMA synchronous = {'FULL' if synchronous == 'FULL' else 'NORMAL'}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
        conn.execute("PRAGMA cache_size = -16000")
        conn.execute("PRAGMA temp_store = MEMORY")
        # Checkpoint every ~16 MB of WAL instead of ~4 MB: four times fewer fsyncs and
        # checkpoint stalls on the writer thread; journal_size_limit trims the file after.
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        self._conn = conn

    @property
    def conn(self) -> sqlite3.Connection:
        """The raw connection: only for code already running on this database's thread."""
        if self._conn is None:
            raise ServiceUnavailable("database is closed")
        return self._conn

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise ServiceUnavailable(f"database {self.name} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def read(
        self, fn: Callable[[sqlite3.Connection], T], time_limit_ms: int | None = None
    ) -> T:
        """Run a read-only unit; with a time limit, a runaway query becomes QueryTooExpensive."""
        if time_limit_ms is None:
            return await self._call(fn, self.conn)
        return await self._call(self._run_limited, fn, time_limit_ms)

    def _run_limited(self, fn: Callable[[sqlite3.Connection], T], time_limit_ms: int) -> T:
        conn = self.conn
        deadline = time.monotonic() + time_limit_ms / 1000
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_STEPS)
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                raise QueryTooExpensive(
                    f"query exceeded its {time_limit_ms} ms budget; narrow it down"
                ) from exc
            raise
        finally:
            conn.set_progress_handler(None, 0)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` inside BEGIN IMMEDIATE … COMMIT on the owning thread, in one hop."""
        cancelled = threading.Event()
        try:
            return await self._call(self._run_write, fn, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def _run_write(self, fn: Callable[[sqlite3.Connection], T], cancelled: threading.Event) -> T:
        conn = self.conn
        if cancelled.is_set():
            raise UnitCancelled()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            if cancelled.is_set():
                raise UnitCancelled()
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    async def close(self, checkpoint: bool = True, *, keep_thread: bool = False) -> None:
        """Checkpoint the WAL into the main file and close; waits for queued units first.

        With `keep_thread`, the thread stays alive for `detach_thread` to hand on.
        """
        if self._closed:
            return
        try:
            await self._call(self._close_on_thread, checkpoint)
        finally:
            self._closed = True
            if not keep_thread:
                await stop_thread(self._executor)

    def detach_thread(self) -> ThreadPoolExecutor:
        """The (idle) thread of a database closed with `keep_thread=True`."""
        assert self._closed and self._conn is None
        return self._executor

    def _close_on_thread(self, checkpoint: bool) -> None:
        if self._conn is None:
            return
        try:
            if checkpoint:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # a busy checkpoint must not prevent closing
            log.warning("checkpoint of %s failed: %s", self.name, exc)
        finally:
            self._conn.close()
            self._conn = None
