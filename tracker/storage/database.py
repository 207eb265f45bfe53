"""One SQLite connection owned by one thread; every unit of work is one hop to it.

Why not a connection shared by coroutines (aiosqlite's model, one hop per
statement): coroutines sharing a connection share its transaction, so
interleaved awaits lose updates and a cancelled request can leave the write
lock held (docs/reliability.md §1, measured). Here a unit of work is a plain
synchronous function `fn(conn)` that runs start to finish on the connection's
own thread, inside `BEGIN IMMEDIATE … COMMIT` for writes. The single-thread
executor runs units in arrival order, so no two units ever interleave, and the
event loop never waits on SQLite.

Group commit: write units that queue up while the thread is busy run together
in ONE transaction (up to MAX_GROUP per turn). A failing unit still fails
alone: the group is rolled back and the others run again, each in its own
SAVEPOINT (see `_run_group`). Every caller learns its result only after the
COMMIT that made it durable. Under load this turns N commits (WAL writes of
the same hot pages, a checkpoint check each) into one; measured on issue
creation at 32 connections, COMMIT was a fifth of all CPU samples before.

Cancellation: a unit not yet started never starts; a unit already running
checks its cancel flag at its end and rolls back (to its savepoint) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, cast

from tracker.errors import (
    QueryTooExpensive,
    ServiceUnavailable,
    StorageFull,
    StorageUnavailable,
)
from tracker.storage import slowlog
from tracker.storage.fairness import FairLane
from tracker.storage.faults import is_busy, storage_error
from tracker.storage.files import private_file
from tracker.storage.sqlite_setup import (
    connection_handle,
    keep_wal_files,
    opened_read_only,
    run_script_in_one_release,
)
from tracker.storage.stats import STATS

T = TypeVar("T")
log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
#: Prefixed to the open script of a database held exclusively (`Database.open`): the WAL
#: index then lives in the connection's heap instead of a shared `-shm` mapping, and the
#: first read takes the file's lock for as long as the connection stays open. The busy
#: timeout is 0 while it tries: a file another process has open is held shared instead
#: at once, not after waiting for a lock that process may keep for hours.
HOLD_EXCLUSIVELY = "PRAGMA locking_mode = EXCLUSIVE; PRAGMA busy_timeout = 0;"
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
WAL_TRIM_STEP = 32 * 1024 * 1024  # a grown WAL file shrinks by at most this per WAL restart
PROGRESS_STEPS = 10_000  # VM steps between deadline checks (~1 ms of work)
WAL_AUTOCHECKPOINT_PAGES = 4_000
MAX_GROUP = 64  # units per group commit: bounds the latency one group adds
#: Set before anything else runs on a connection: durability, foreign keys, and no
#: functions of the schema (views, triggers) that a planted file could use.
#: `journal_size_limit` also makes a clean close truncate a persistent `-wal` to zero
#: bytes (`sqlite_setup.keep_wal_files`), so it is set on every connection from the start.
BASE_PRAGMAS = (
    "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA trusted_schema = OFF;"
    f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT};"
)
#: Tuning for writes and large reads (the WAL's size and checkpoints, the page cache, sort
#: space): a tenant sets these with its first unit on a thread, not on open (each pragma
#: is one more GIL round trip in the open hop; docs/tenants.md, seventh session).
TUNING_PRAGMAS = (
    "PRAGMA cache_size = -16000;"
    # Checkpoint every ~16 MB of WAL instead of ~4 MB: four times fewer fsyncs and
    # checkpoint stalls on the writer thread; journal_size_limit trims the file after.
    f"PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};"
)
_UNDO_POINT = "undo_whole"  # see Database._undo
MIN_SLICE_MS = 10  # an expensive read runs at least this long before it yields
MAX_SLICE_MS = 40  # ... and at most this long while other units wait (p99 goal: 100 ms)


@dataclass(eq=False)
class _WriteUnit:
    """A queued write: the function, where its outcome goes, and its cancel flag."""

    fn: Callable[[sqlite3.Connection], object]
    future: asyncio.Future[object]
    cancelled: bool = False
    outcome: tuple[bool, object] | None = None  # (ok, result or exception)


class FirstRead(Generic[T]):
    """A small read to run on the thread right after a connect, in the open's own hop.

    A tenant miss used to open on a thread and then answer its read on the event loop
    (`Database.read_now`), where compiling the statement against the freshly parsed
    schema, and every GIL release of the read, fell on the loop. Run here instead, the
    read shares the hop that parsed the schema (docs/tenants.md, "Ninth session").
    """

    def __init__(self, fn: Callable[[sqlite3.Connection], T]) -> None:
        self.fn = fn
        self.outcome: tuple[bool, object] | None = None  # (ok, result or exception)

    def run(self, conn: sqlite3.Connection) -> None:
        """On the thread: the read's outcome is kept, never raised (the open succeeded)."""
        try:
            self.outcome = (True, self.fn(conn))
        except Exception as exc:
            self.outcome = (False, exc)


class UnitCancelled(Exception):
    """Raised on the writer thread when the awaiting request went away before COMMIT."""


class _Preempted(Exception):
    """An expensive read gave the thread up to waiting units; it runs again later."""


class _GroupAborted(Exception):
    """A unit's error rolled back the whole group transaction (e.g. disk full)."""


def _settle(group: list[_WriteUnit], name: str) -> None:
    """On the event loop: hand every unit of a finished group its outcome."""
    for unit in group:
        if unit.future.done():
            continue
        ok, value = unit.outcome or (False, ServiceUnavailable(f"write to {name} did not finish"))
        if ok:
            unit.future.set_result(value)
        else:
            unit.future.set_exception(cast(BaseException, value))  # ok=False carries one


class DbThread(ThreadPoolExecutor):
    """A single-thread executor: the one thread that runs a connection's units.

    `started` tells whether its OS thread exists yet: the first submit starts it
    and waits until it runs (Thread.start), which must not happen on the loop.
    """

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="db")
        self.started = False


def new_thread() -> DbThread:
    """A fresh single-thread executor (its thread starts on first use)."""
    return DbThread()


async def stop_thread(executor: ThreadPoolExecutor) -> None:
    """Join the thread off the event loop (a join blocks)."""
    await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)


async def start_thread(executor: DbThread) -> None:
    """Start a fresh executor's thread off the loop (see `_start`); for lenders' own jobs."""
    await _start(executor)


async def _start(executor: DbThread) -> None:
    """Start a fresh executor's thread from a helper thread, never on the loop.

    The first submit starts the thread and waits until it runs (Thread.start);
    measured: a third of loop time when tenants churned through the LRU.
    """
    if not executor.started:
        executor.started = True
        await asyncio.get_running_loop().run_in_executor(None, executor.submit, _noop)


def _noop() -> None:
    return None


class ThreadLender(Protocol):
    """Lends threads to databases while they have work (see `Database`)."""

    def lend(self) -> DbThread: ...

    def take_back(self, thread: DbThread) -> None: ...


class Database:
    """A SQLite file and the one thread that runs its units. Open with `Database.open`.

    Without a `lender` the database owns its thread for life (the system
    database). With one (tenants), it holds a thread only while work is in
    flight: the thread is borrowed when a unit is submitted and handed back when
    the last one is answered, so threads scale with *busy* tenants, not open
    ones. Units still run one at a time in arrival order: a database never has
    two threads, and gives its thread back only when nothing of it is queued or
    running there (`_busy` counts units submitted and not yet answered; a write
    drain is finished once `_drain_pending` is false).
    """

    def __init__(
        self, path: Path, name: str, lender: ThreadLender | None = None, *, exclusive: bool = False
    ) -> None:
        self.path = path
        self.name = name
        self.leases = 0
        self._lender = lender
        self._executor: DbThread | None = None if lender is not None else new_thread()
        self._busy = 0  # units submitted from the loop and not yet answered
        self._conn: sqlite3.Connection | None = None
        self._untuned = False  # TUNING_PRAGMAS still to set, before the next unit (`_submit`)
        self._closed = False
        self._queue: deque[_WriteUnit] = deque()
        self._queue_lock = threading.Lock()
        self._drain_pending = False
        #: Units submitted and not yet answered, other than expensive reads. Changed on
        #: the event loop only; read by the thread to preempt an expensive read.
        self.waiting = 0
        self._lane = FairLane()  # turns of expensive reads
        self.commits = 0  # transactions committed by `write` (group commit makes it < units)
        self._wal = Path(f"{os.path.abspath(path)}-wal")  # the file SQLite opened
        self._size_limit = JOURNAL_SIZE_LIMIT  # the connection's journal_size_limit now
        self.wal_size_limit = JOURNAL_SIZE_LIMIT  # where a grown WAL file is trimmed back to
        self.wal_trim_step = WAL_TRIM_STEP  # 0: truncate a grown WAL at once (as SQLite does)
        self._tracer = slowlog.tracer(self.name)  # None unless the slow-query log is on
        #: Asked to hold the file exclusively (`open`); `held_exclusively` says if it did.
        self._exclusive = exclusive
        self.held_exclusively = False
        #: Page copies of this database in progress (an online backup; set on the loop):
        #: while there is one, transactions are undone through a savepoint (`_undo`).
        self.copying = 0
        self._undo_point = False  # the open transaction began with the savepoint

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        create: bool,
        synchronous: str = "NORMAL",
        name: str | None = None,
        lender: ThreadLender | None = None,
        on_open: Callable[[sqlite3.Connection], object] | None = None,
        ready_when: str | None = None,
        first: Callable[[], object] | None = None,
        first_read: FirstRead[Any] | None = None,
        exclusive: bool = False,
    ) -> Database:
        """Open (or with `create`, create) a database; `mode=rw` never creates a file.

        `on_open` runs on the thread right after connecting, in the same hop (the
        tenant pool's migrations check: one hop per open instead of two). A
        failure there closes the connection again. `ready_when` is a statement that
        succeeds exactly when `on_open` has nothing to do: it runs with the pragmas, the
        GIL released once for all (`run_script_in_one_release`), and `on_open` is
        skipped when it succeeds. `first` runs on the thread before
        connecting, whether or not the connect succeeds (the pool closes evicted
        tenants there). `first_read` runs after `on_open`, in the same hop; its outcome
        is kept in it (`settle`). `lender`: see the class.

        `exclusive`: hold the file for as long as the connection is open, so no other
        process can read or write it meanwhile (`HOLD_EXCLUSIVELY`; the server's tenants,
        whose online backups and exports it takes itself: docs/tenants.md, "Tenth
        session"). Cheaper to open: no `-shm` to map, no shared-memory locks. A file
        another process has open is held shared instead, as without `exclusive`.
        """
        db = cls(path, name or path.parent.name, lender, exclusive=exclusive)
        try:
            await db._call(db._connect, create, synchronous, on_open, ready_when, first, first_read)
        except BaseException:
            if db._executor is not None and db._lender is None:
                db._executor.shutdown(wait=False)
            raise
        return db

    def _connect(
        self,
        create: bool,
        synchronous: str,
        on_open: Callable[[sqlite3.Connection], object] | None,
        ready_when: str | None = None,
        first: Callable[[], object] | None = None,
        first_read: FirstRead[Any] | None = None,
    ) -> None:
        if first is not None:
            first()
        try:
            ready = self._connect_only(create, synchronous, ready_when)
            if on_open is not None and not ready:
                on_open(self.conn)
        except BaseException:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            raise
        if first_read is not None:
            first_read.run(self.conn)

    def _connect_only(self, create: bool, synchronous: str, ready_when: str | None = None) -> bool:
        """Connect and set the pragmas; True if `ready_when` ran and succeeded too."""
        if self._exclusive:
            try:
                ready = self._connect_as(create, synchronous, ready_when, exclusive=True)
            except sqlite3.OperationalError as exc:
                if not is_busy(exc):
                    raise
                # Another process has the file open (a `sqlite3` shell, a snapshot):
                # this connection shares it, as every connection did before.
                log.info("%s is open in another process: opened shared", self.name)
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
            else:
                self.held_exclusively = True
                return ready
        return self._connect_as(create, synchronous, ready_when, exclusive=False)

    def _connect_as(
        self, create: bool, synchronous: str, ready_when: str | None, *, exclusive: bool
    ) -> bool:
        if create:
            private_file(self.path)  # 0600 whatever the umask; -wal/-shm inherit it
        uri = Path(os.path.abspath(self.path)).as_uri() + ("?mode=rwc" if create else "?mode=rw")
        conn = sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
        )
        conn.row_factory = sqlite3.Row
        handle = connection_handle(conn, str(self.path))
        if handle is not None:
            if opened_read_only(handle):
                conn.close()
                raise OSError(errno.EROFS, "the database could be opened only read-only")
            # Keep `-wal`/`-shm` between opens: a tenant miss then creates and deletes
            # no files (docs/tenants.md, "Eighth session").
            keep_wal_files(handle)
        if self._tracer is not None:
            conn.set_trace_callback(self._tracer.on_statement)
        self._conn = conn
        hold = HOLD_EXCLUSIVELY if exclusive else ""
        if create:
            # The locking mode first: it must be set before the connection's first WAL access.
            conn.executescript(f"{hold}PRAGMA journal_mode = WAL;")  # persistent in the file
            hold = ""
        # One script, not one call per pragma: every call gives the GIL up and takes it
        # back, and under load each retake queues behind the event loop and the other
        # tenant threads (measured: opening a tenant took 16 ms of wall time for 0.7 ms
        # of work with eight calls, while 2,000 tenants churned through the LRU). A lent
        # database (a tenant) sets the tuning pragmas later, with its first unit on a
        # thread (`_submit`): a miss served by a small read never needs them.
        synchronous = "FULL" if synchronous == "FULL" else "NORMAL"
        script = hold + BASE_PRAGMAS.format(synchronous=synchronous)
        if self._lender is None:
            script += TUNING_PRAGMAS
        else:
            self._untuned = True
        if (
            handle is not None
            and ready_when is not None
            and run_script_in_one_release(handle, f"{script}{ready_when};")
        ):
            return True
        # Without a handle, or when anything failed: statement by statement, so a real
        # error is raised as `sqlite3` words it (pragmas are idempotent to run again;
        # `_connect` closes the connection on any error).
        conn.executescript(script)
        if exclusive:  # take the lock now, where a busy file is opened shared instead
            conn.execute("PRAGMA user_version").fetchone()
        return False

    def _tune(self) -> None:
        """On the thread, before a tenant's first unit: the pragmas deferred from open."""
        if self._conn is None:
            return
        try:
            self._conn.executescript(TUNING_PRAGMAS)
        except sqlite3.Error as exc:  # only tuning: the unit itself still runs
            log.warning("tuning pragmas of %s failed: %s", self.name, exc)

    @property
    def queue_depth(self) -> int:
        """Write units queued for the thread and not started yet (read by /metrics)."""
        return len(self._queue)

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
        executor = self._thread()
        self._busy += 1
        try:
            await _start(executor)
            job = self._submit(executor, fn, *args)
        except BaseException:
            self._unit_answered()
            raise
        try:
            return await asyncio.wrap_future(job)
        finally:
            if job.done():
                self._unit_answered()
            else:  # cancelled while running: the thread stays ours until the unit ends
                job.add_done_callback(lambda _: self._answer_from_thread(loop))

    def _submit(self, executor: DbThread, fn: Callable[..., T], *args: object) -> Future[T]:
        """Every job goes to the thread through here: the slow-query log, when it is on,
        times each one; a tenant's first job is preceded by its tuning pragmas (same
        thread, in order, so nothing runs on the thread untuned)."""
        if self._untuned:
            executor.submit(self._tune)
            self._untuned = False
        if self._tracer is None:
            return executor.submit(fn, *args)
        return executor.submit(self._tracer.job, lambda: self._conn, fn, *args)

    @property
    def idle(self) -> bool:
        """No unit of ours in flight: every read answered (a read cancelled while running
        counts until it ends) and no write group queued or running."""
        return not self._busy and not self._drain_pending

    async def read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A small read (a few indexed rows) answered on the event loop, without the hop.

        Only while the database is idle: units are submitted only from this loop (and a
        write drain resubmits itself while `_drain_pending` stays true), so nothing can
        start on the connection until this returns, and its statements see one state as
        a unit on the thread would. Otherwise (writes or reads in flight) it queues like
        `read`. The hop costs more than a primary-key read itself (measured in
        docs/read-path.md); anything that may scan belongs in `read`, which never
        blocks the loop.
        """
        conn = self._conn
        if not self.idle or conn is None or self._closed:
            return await self.read(fn)
        try:
            return fn(conn)
        except (sqlite3.Error, OSError) as exc:
            fault = self._read_fault(exc)
            if fault is exc:
                raise
            raise fault from exc

    def settle(self, first_read: FirstRead[T]) -> T:
        """On the loop: what a read run in the open's hop answered, as `read_now` would
        (its result, or its error with storage faults mapped)."""
        assert first_read.outcome is not None
        ok, value = first_read.outcome
        if ok:
            return cast(T, value)
        if isinstance(value, sqlite3.Error | OSError):
            fault = self._read_fault(value)
            if fault is not value:
                raise fault from value
        raise cast(BaseException, value)

    def _answer_from_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nothing to hand back
            loop.call_soon_threadsafe(self._unit_answered)

    def _unit_answered(self) -> None:
        self._busy -= 1
        self._give_back_if_idle()

    def _thread(self) -> DbThread:
        """On the loop: the thread this database's next unit runs on (borrowed if needed)."""
        if self._executor is None:
            assert self._lender is not None
            self._executor = self._lender.lend()
        return self._executor

    def _give_back_if_idle(self) -> None:
        """On the loop: hand a borrowed thread back once nothing of ours is on it."""
        if self._lender is None or self._executor is None or self._busy:
            return
        with self._queue_lock:
            if self._drain_pending or self._queue:
                return  # the drain's end calls this again
            executor, self._executor = self._executor, None
        self._lender.take_back(executor)

    async def read(
        self,
        fn: Callable[[sqlite3.Connection], T],
        time_limit_ms: int | None = None,
        *,
        owner: str | None = None,
    ) -> T:
        """Run a read-only unit; with a time limit it is an *expensive* read (see below),
        and `owner` (a user id) is whose turn it takes in the fair lane."""
        try:
            if time_limit_ms is None:
                self.waiting += 1  # may preempt an expensive read running on the thread
                try:
                    return await self._call(fn, self.conn)
                finally:
                    self.waiting -= 1
            return await self._read_expensive(fn, time_limit_ms, owner or "")
        except (sqlite3.Error, OSError) as exc:
            fault = self._read_fault(exc)
            if fault is exc:
                raise
            raise fault from exc

    async def side_job(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the thread as one unit, outside any transaction, without
        counting as a waiting unit: a batch of an online backup must not preempt an
        expensive read (it waits its turn like any unit, and writes queued meanwhile
        run before the next batch)."""
        return await self._call(fn, self.conn)

    def _read_fault(self, exc: sqlite3.Error | OSError) -> Exception:
        """What a failed read answers: a storage fault (503), else the error itself."""
        fault = storage_error(exc, self.path)
        if fault is None:
            return exc
        if isinstance(fault, StorageFull):  # a read is not refused for space: 503
            fault = StorageUnavailable(
                "the disk is full and this database cannot be read right now",
                retry_after=fault.retry_after,
            )
        return fault

    async def _read_expensive(
        self, fn: Callable[[sqlite3.Connection], T], time_limit_ms: int, owner: str
    ) -> T:
        """A user-driven query (search, filters, boards) that must not stall the others.

        One connection serves every unit of the tenant, in arrival order, so eight
        1-second searches queued by one user made anyone else's single-issue read
        wait 8 s. Three rules keep the thread fair without a second connection:
        - expensive reads queue among themselves (one at a time in the thread's
          queue, see FairLane), so a cheap unit submitted after eight of them
          waits for one, not eight, and owners take turns, so another user's
          search runs next rather than after the greedy user's whole queue;
        - the budget counts from submission, so queue time is spent from it and a
          pile-up of expensive reads drains at once (QueryTooExpensive) instead
          of running one after another;
        - while any other unit waits (a cheap read, a write), a running expensive
          read gives the thread up after its slice: it is interrupted and queued
          again at the back, with a slice twice as long (up to MAX_SLICE_MS), and
          starts over. Reads are idempotent, so starting over is safe; it costs
          only the expensive read's own time.
        Cheap units therefore wait at most about MAX_SLICE_MS behind expensive
        ones. The price: under sustained traffic (another unit arriving during
        every slice) a query needing more than MAX_SLICE_MS of uninterrupted work
        runs out of budget and answers 503 "query too expensive" — see
        docs/STATUS.md (issue 12) for the measurements and the real fix (readers
        beside the writer, which needs SQLite >= 3.51.3).
        """
        deadline = time.monotonic() + time_limit_ms / 1000
        slice_ms = MIN_SLICE_MS
        while True:
            async with self._lane.turn(owner):  # at most one on the thread's queue
                try:
                    return await self._call(
                        self._run_limited, fn, deadline, slice_ms, time_limit_ms
                    )
                except _Preempted:
                    slice_ms = min(slice_ms * 2, MAX_SLICE_MS)
                except QueryTooExpensive:
                    STATS.budget_hits += 1
                    raise
            await asyncio.sleep(0)  # let the units that preempted it go first

    def _run_limited(
        self,
        fn: Callable[[sqlite3.Connection], T],
        deadline: float,
        slice_ms: float,
        time_limit_ms: int,
    ) -> T:
        conn = self.conn
        started = time.monotonic()
        too_expensive = QueryTooExpensive(
            f"query exceeded its {time_limit_ms} ms budget; narrow it down"
        )
        if started >= deadline:  # spent its whole budget queuing
            raise too_expensive
        yield_at = started + slice_ms / 1000
        preempted = False

        def progress() -> int:
            nonlocal preempted
            now = time.monotonic()
            if now > deadline:
                return 1
            if now > yield_at and self.waiting:
                preempted = True
                return 1
            return 0

        conn.set_progress_handler(progress, PROGRESS_STEPS)
        try:
            return fn(conn)
        except sqlite3.OperationalError as exc:
            if "interrupted" in str(exc):
                if preempted:
                    raise _Preempted() from None
                raise too_expensive from exc
            raise
        finally:
            conn.set_progress_handler(None, 0)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` inside BEGIN IMMEDIATE … COMMIT on the owning thread, in one hop.

        Units queued while the thread is busy share one transaction (group commit,
        see the module docstring); each still succeeds or fails on its own.
        """
        if self._closed:
            raise ServiceUnavailable(f"database {self.name} is closed")
        loop = asyncio.get_running_loop()
        unit = _WriteUnit(fn, loop.create_future())
        self._busy += 1
        try:
            await _start(self._thread())  # nothing may await between queuing and submitting
        except BaseException:
            self._unit_answered()
            raise
        with self._queue_lock:
            self._queue.append(unit)
            start_drain = not self._drain_pending
            self._drain_pending = True
        try:
            if start_drain:
                try:
                    self._submit_drain(loop)
                except RuntimeError as exc:
                    unit.future.cancel()  # answered here, not through the future
                    raise ServiceUnavailable(f"database {self.name} is closed") from exc
            self.waiting += 1  # may preempt an expensive read running on the thread
            try:
                return cast(T, await unit.future)  # the unit's future holds what its fn returned
            except asyncio.CancelledError:
                unit.cancelled = True
                raise
            except (sqlite3.Error, OSError) as exc:  # disk full / read-only: 507 / 503, not 500
                fault = storage_error(exc, self.path)
                if fault is None:
                    raise
                raise fault from exc
            finally:
                self.waiting -= 1
        finally:
            self._busy -= 1
            self._give_back_if_idle()

    async def dry_run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` inside BEGIN IMMEDIATE … ROLLBACK on the owning thread: a unit of work
        that never commits (previews). It never joins a group commit, and everything it
        wrote, AUTOINCREMENT counters included, is gone when it returns."""
        self.waiting += 1  # may preempt an expensive read running on the thread
        try:
            return await self._call(self._run_rolled_back, fn)
        except (sqlite3.Error, OSError) as exc:  # disk full / read-only: 507 / 503, not 500
            fault = storage_error(exc, self.path)
            if fault is None:
                raise
            raise fault from exc
        finally:
            self.waiting -= 1

    def _run_rolled_back(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self.conn
        self._begin(conn)
        try:
            return fn(conn)
        finally:
            self._undo(conn)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the thread: run one group of queued units, then queue the next group.

        One group per job, not a loop over the whole queue: reads submitted
        meanwhile wait behind one group at most, so a steady stream of writes
        cannot starve them.
        """
        with self._queue_lock:
            group = [self._queue.popleft() for _ in range(min(MAX_GROUP, len(self._queue)))]
        try:
            self._run_and_settle(group, loop)
            self._pace_wal_trim()
        finally:
            with self._queue_lock:
                more = bool(self._queue)
                self._drain_pending = more
            if more:
                self._submit_drain(loop)
            elif self._lender is not None:  # the units' answers may have come first
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._give_back_if_idle)

    def _run_and_settle(self, group: list[_WriteUnit], loop: asyncio.AbstractEventLoop) -> None:
        live = [unit for unit in group if not unit.cancelled]
        if not live:
            return
        STATS.group_committed(len(live))
        try:
            self._run_group(live)
        finally:  # every unit hears back, whatever happened here
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                loop.call_soon_threadsafe(_settle, live, self.name)

    def _finish_queued(self) -> None:
        """Before closing, on the thread: run what is still queued (a drain job may be
        queued behind the close; it then finds nothing left)."""
        while True:
            with self._queue_lock:
                group = [self._queue.popleft() for _ in range(min(MAX_GROUP, len(self._queue)))]
            if not group:
                return
            self._run_and_settle(group, group[0].future.get_loop())

    def _submit_drain(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            if self._executor is None:  # given back: only after the database closed
                raise RuntimeError("no thread")
            self._submit(self._executor, self._drain, loop)
        except RuntimeError:  # the thread is shut down: the database closed
            with self._queue_lock:
                orphans = list(self._queue)
                self._queue.clear()
                self._drain_pending = False
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, orphans, self.name)
            raise

    def _run_group(self, group: list[_WriteUnit]) -> None:
        """One transaction for the group, optimistically without savepoints.

        Savepoints cost ~30-80 µs per unit (measured), and units rarely fail, so a
        group first runs bare. If unit k fails, everything is rolled back, k keeps
        its error (it saw exactly what it would have seen alone after 0..k-1), and
        the others run again, this time each inside its own savepoint.
        """
        if len(group) == 1:
            self._run_alone(group[0])
            return
        try:
            conn = self.conn
            self._begin(conn)
            for index, unit in enumerate(group):
                try:
                    unit.outcome = (True, self._run_unit(unit, conn))
                except BaseException as exc:
                    unit.outcome = (False, exc)
                    failed = index
                    break
            else:
                conn.execute("COMMIT")
                self.commits += 1
                return
            self._undo(conn)
        except BaseException:  # BEGIN, COMMIT or ROLLBACK itself failed
            self._run_each_alone(group)
            return
        rest = group[:failed] + group[failed + 1 :]
        for unit in rest:
            unit.outcome = None
        self._run_with_savepoints(rest)

    def _run_with_savepoints(self, group: list[_WriteUnit]) -> None:
        """One transaction, each unit in its own savepoint so a failure undoes it alone."""
        try:
            conn = self.conn
            self._begin(conn)
            for unit in group:
                conn.execute("SAVEPOINT unit")
                try:
                    unit.outcome = (True, self._run_unit(unit, conn))
                    conn.execute("RELEASE unit")
                except BaseException as exc:  # this unit alone is undone
                    if not conn.in_transaction:  # the error ended the whole transaction
                        raise _GroupAborted() from exc
                    conn.execute("ROLLBACK TO unit")
                    conn.execute("RELEASE unit")
                    unit.outcome = (False, exc)
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException:
            self._run_each_alone(group)

    def _run_each_alone(self, group: list[_WriteUnit]) -> None:
        """The group transaction failed as a whole: nothing of it is stored, so retry singly."""
        for unit in group:
            unit.outcome = None
        if self._conn is not None:
            self._undo(self._conn)
        for unit in group:
            self._run_alone(unit)

    def _run_alone(self, unit: _WriteUnit) -> None:
        try:
            conn = self.conn
            self._begin(conn)
            try:
                result = self._run_unit(unit, conn)
                conn.execute("COMMIT")
                self.commits += 1
            except BaseException:
                self._undo(conn)
                raise
            unit.outcome = (True, result)
        except BaseException as exc:
            unit.outcome = (False, exc)

    def _pace_wal_trim(self) -> None:
        """On the thread, after a group: shrink a WAL file grown past the limit in steps.

        A long read snapshot (an online backup) stops checkpoints, so the WAL grows
        (hundreds of MB in seconds). SQLite truncates it back to `journal_size_limit`
        in the first commit after the next WAL restart, all at once, and freeing that
        much of a file stalled a writer for 0.35-0.45 s at 200,000 issues (measured in
        docs/operations-data.md, "the stall"; the disk is mounted with `discard`). So
        while the file is bigger than the limit by more than a step, the limit follows
        it one step below its size: each restart (one every ~16 MB of WAL written)
        frees one step, and the file is back to the limit after a few restarts. Costs
        one stat() per group; the pragma runs only when the target moves.
        """
        if self._conn is None:
            return
        try:
            size = os.stat(self._wal).st_size
        except OSError:
            return
        step, limit = self.wal_trim_step, self.wal_size_limit
        target = limit
        if step and size > limit + step:
            target = max(limit, size - size % step - step)
        if target != self._size_limit:
            with contextlib.suppress(sqlite3.Error):  # only a pace: the next group retries
                self._conn.execute(f"PRAGMA journal_size_limit = {target}")
                self._size_limit = target

    def _begin(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE; while a page copy of this database runs, also a savepoint
        that `_undo` can roll back to (see there)."""
        conn.execute("BEGIN IMMEDIATE")
        self._undo_point = self.copying > 0
        if self._undo_point:
            conn.execute(f"SAVEPOINT {_UNDO_POINT}")

    def _undo(self, conn: sqlite3.Connection) -> None:
        """Undo the open transaction, if one is open.

        While a page copy runs (tracker/storage/page_copy.py), a ROLLBACK of a
        transaction that wrote pages would restart the copy from page 1 (in WAL mode
        SQLite cannot undo pages it already wrote into the copy): a preview or a failed
        unit during a 40 s copy would cost the whole copy again. Rolled back to a
        savepoint and committed instead, the transaction leaves the same data (none of
        its writes) and the copy goes on; the pages it restored reach the copy as any
        commit's do.
        """
        if not conn.in_transaction:
            return
        if self._undo_point:
            try:
                conn.execute(f"ROLLBACK TO {_UNDO_POINT}")
                conn.execute("COMMIT")
                return
            except sqlite3.Error:
                if not conn.in_transaction:
                    return
        conn.execute("ROLLBACK")

    @staticmethod
    def _run_unit(unit: _WriteUnit, conn: sqlite3.Connection) -> object:
        if unit.cancelled:
            raise UnitCancelled()
        result = unit.fn(conn)
        if not conn.in_transaction:  # e.g. disk full: SQLite rolled everything back
            raise sqlite3.OperationalError("the transaction ended inside a unit of work")
        if unit.cancelled:
            raise UnitCancelled()
        return result

    def detach(self) -> sqlite3.Connection | None:
        """On the loop: end a lent database without a hop, if nothing of it is in flight.

        Returns its connection for the caller to close on a thread of its choosing (the
        pool closes evicted tenants in batches, one hop for many), or None when units
        are queued or running or a thread is still held: then use `close`, which waits
        for them. After this the database answers like a closed one.
        """
        if self._closed or self._lender is None or self._executor is not None:
            return None
        if not self.idle or self._queue or self._conn is None:
            return None
        conn, self._conn = self._conn, None
        self._closed = True
        return conn

    async def close(self, checkpoint: bool = True) -> None:
        """Checkpoint the WAL into the main file and close; waits for queued units first.

        A borrowed thread goes back to its lender; an owned one is joined.
        """
        if self._closed:
            return
        try:
            await self._call(self._close_on_thread, checkpoint)
        finally:
            self._closed = True
            if self._lender is None and self._executor is not None:
                await stop_thread(self._executor)

    def _close_on_thread(self, checkpoint: bool) -> None:
        if self._conn is None:
            return
        self._finish_queued()
        try:
            if checkpoint:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # a busy checkpoint must not prevent closing
            log.warning("checkpoint of %s failed: %s", self.name, exc)
        finally:
            self._conn.close()
            self._conn = None
