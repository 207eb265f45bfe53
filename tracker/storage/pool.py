"""The tenant connection manager: open on demand, migrate once, keep an LRU.

A tenant file lives at `<data_dir>/<org_id>/tracker.db`. The org id is an
opaque UUID from the system database, checked against the UUID grammar before
any path is built, so URL text never becomes a path. Existing tenants open with
`mode=rw`: an unknown id can never create a file. Only `create` makes one.

At most `max_open` tenants stay open (3 file descriptors each; 2 when held exclusively:
no `-shm`). Eviction picks
the least recently used tenant with no lease and closes it in the background; a
tenant with work in flight is never closed under a request.

Threads follow work, not open files: an open tenant borrows a thread from the
pool only while it has units in flight and hands it back when the last one is
answered (see `Database`), so a server with thousands of open tenants runs
about as many threads as it has busy ones, plus a few idle ones kept warm.

At most `opens_at_once` tenants open at the same moment; further misses wait on
the event loop for a turn. An open is SQLite work with the GIL released, taken
back a few times per open: dozens of opens in flight on dozens of threads hand
the GIL around on every release (16 context switches per request measured with
32 clients), and the event loop waits in that queue too (docs/tenants.md,
"Eleventh session").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from tracker.domain.ids import is_uuid
from tracker.errors import DataDirError, NotFound, ServiceUnavailable
from tracker.storage.database import (
    Database,
    DbThread,
    FirstRead,
    new_thread,
    start_thread,
    stop_thread,
)
from tracker.storage.faults import storage_error
from tracker.storage.files import private_dir, try_lock
from tracker.storage.migrate import apply_migrations, current_check, is_current
from tracker.storage.stats import STATS

T = TypeVar("T")
log = logging.getLogger(__name__)

TENANT_FILE = "tracker.db"
FDS_PER_TENANT = 3  # tracker.db, -wal, -shm
FD_HEADROOM = 256  # client sockets, the system database, logs
MAX_IDLE_THREADS = 32  # threads kept warm for the next busy tenants
#: Evicted tenants whose close has not finished, beyond which a miss waits for the oldest
#: close before it opens: connections (3 fds each) stay within cap + leases + this.
MAX_CLOSING = 32
MAX_CLOSERS = 4  # close hops running at once (each closes all handed over so far)
OPENS_AT_ONCE = 8  # tenant opens in flight at once (RHYTHM_TENANT_OPENS_AT_ONCE)


class TenantPool:
    """Leases open tenant databases; see the module docstring for the rules."""

    def __init__(
        self,
        data_dir: Path,
        *,
        max_open: int,
        synchronous: str = "NORMAL",
        opens_at_once: int = OPENS_AT_ONCE,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.max_open = max_open
        self.synchronous = synchronous
        #: Tenants opened from now on are held exclusively (`Database.open`): set by the
        #: server once its backup socket listens, so that backups and exports, which
        #: cannot read a held file, are taken by the server itself.
        self.exclusive = False
        self._open: OrderedDict[str, Database] = OrderedDict()
        self._opening: dict[str, asyncio.Lock] = {}
        #: Evicted tenants whose connection is not closed yet -> done when it is.
        self._evicting: dict[str, asyncio.Future[None]] = {}
        #: Idle evicted tenants' connections, closed together in one hop (`_close_batches`).
        self._to_close: list[tuple[str, sqlite3.Connection]] = []
        self._batch_closed: asyncio.Future[None] | None = None
        self._closers: set[asyncio.Task[None]] = set()
        self._idle_threads: list[DbThread] = []  # handed back by tenants, lent again
        self._joining: set[asyncio.Future[None]] = set()  # threads being joined
        self._closing = False
        #: Turns for misses: see the module docstring.
        self.opens_at_once = opens_at_once
        self._open_turns = asyncio.Semaphore(opens_at_once)
        self.peak_open = 0
        #: Counters for metrics: tenant files opened (misses), closed by eviction, and
        #: threads started, since this pool was made; `threads_lent` is a gauge.
        self.opens = 0
        self.evictions = 0
        self.close_hops = 0  # thread hops that closed evicted tenants (batches)
        self.threads_started = 0
        self.threads_lent = 0
        self.opens_waiting = 0  # gauge: misses waiting for a turn to open

    def lend(self) -> DbThread:
        """A thread for a tenant that has work (LIFO: the warmest idle one)."""
        self.threads_lent += 1
        if self._idle_threads:
            return self._idle_threads.pop()
        self.threads_started += 1
        return new_thread()

    def take_back(self, thread: DbThread) -> None:
        """A tenant's last unit was answered: keep its thread warm, or retire it."""
        self.threads_lent -= 1
        if len(self._idle_threads) < MAX_IDLE_THREADS and not self._closing:
            self._idle_threads.append(thread)
        else:  # joined off the loop; close_all waits for the joins
            join = asyncio.get_running_loop().run_in_executor(None, thread.shutdown, True)
            self._joining.add(join)
            join.add_done_callback(self._joining.discard)

    def tenant_path(self, org_id: str) -> Path:
        """The file of a tenant; refuses anything but a canonical UUID, and any escape."""
        if not is_uuid(org_id):
            raise NotFound("organization not found")
        # A canonical UUID holds no separator and no dot, so this path cannot leave
        # data_dir (which was resolved once); a symlinked tenant folder is refused on
        # open. No realpath per request: it cost ~10 syscalls on the event loop.
        return self.data_dir / org_id / TENANT_FILE

    @property
    def open_count(self) -> int:
        return len(self._open)

    def open_databases(self) -> list[Database]:
        """The tenants open now (a snapshot, for /metrics)."""
        return list(self._open.values())

    async def create(self, org_id: str) -> None:
        """Create and migrate a new tenant database (idempotent for the same id)."""
        path = self.tenant_path(org_id)
        try:
            private_dir(path.parent)
        except OSError as exc:
            fault = storage_error(exc, self.data_dir)
            if fault is None:
                raise
            raise fault from exc
        async with self.lease(org_id, create=True):
            pass

    def lease_open(self, org_id: str) -> Database | None:
        """A lease on a tenant that is open now, without a context manager, or None.

        The fast path of `lease` for the common case (the tenant is open), for callers on
        the hot read path: an async context manager per request costs more than the read
        it guards (docs/read-path.md). The caller must call `release(db)` in a `finally`.
        """
        db = self._open.get(org_id)
        if db is None or self._closing:
            return None
        self._open.move_to_end(org_id)
        db.leases += 1
        return db

    def release(self, db: Database) -> None:
        """End a lease taken with `lease_open` (what leaving `lease` does)."""
        db.leases -= 1
        if len(self._open) > self.max_open:  # a burst of leases left it over the cap
            self._evict_over_cap()

    async def read_small(self, org_id: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A small read of a few indexed rows (one issue, the project list) at its cheapest.

        An open tenant answers on the event loop when its thread is idle
        (`Database.read_now`). A tenant this has to open answers on the thread that opens
        it, in the same hop (`FirstRead`): the statement compiles against the schema that
        hop just parsed, and none of the read's GIL releases fall on the loop.
        """
        db = self.lease_open(org_id)
        if db is not None:
            try:
                return await db.read_now(fn)
            finally:
                self.release(db)
        first_read = FirstRead(fn)
        db = await self._acquire(org_id, False, first_read)
        try:
            if first_read.outcome is None:  # another request opened it meanwhile
                return await db.read_now(fn)
            return db.settle(first_read)
        finally:
            self.release(db)

    @contextlib.asynccontextmanager
    async def lease(self, org_id: str, *, create: bool = False) -> AsyncIterator[Database]:
        """Borrow a tenant's database for the length of one request or unit of work."""
        db = await self._acquire(org_id, create)
        try:
            yield db
        finally:
            self.release(db)

    @contextlib.asynccontextmanager
    async def lease_cold(self, org_id: str) -> AsyncIterator[Database]:
        """A lease that leaves the hot tenants where they are in the LRU (a background pass
        over every tenant, docs/tenants.md "Start-up with many tenants").

        An open tenant is not made recent; a tenant this had to open goes to the cold end,
        so the next tenant the pass opens evicts it rather than one that serves requests.
        """
        db = self._open.get(org_id)
        if db is not None and not self._closing:
            db.leases += 1  # no move_to_end: a scan is not a use
        else:
            db = await self._acquire(org_id, False)
            if org_id in self._open:
                self._open.move_to_end(org_id, last=False)
        try:
            yield db
        finally:
            self.release(db)

    async def _acquire(
        self, org_id: str, create: bool, first_read: FirstRead[Any] | None = None
    ) -> Database:
        if self._closing:
            raise ServiceUnavailable("shutting down")
        db = self._open.get(org_id)
        if db is not None:
            self._open.move_to_end(org_id)
            db.leases += 1
            return db
        lock = self._opening.setdefault(org_id, asyncio.Lock())
        async with lock:  # two first requests for one tenant open and migrate it once
            db = self._open.get(org_id)
            if db is None:
                if (closing := self._evicting.get(org_id)) is not None:
                    await asyncio.wait([closing])  # never two connections to one file
                await self._take_open_turn()
                try:  # closes that piled up while this miss waited for its turn hold it back
                    await self._wait_for_closes()
                    db = await self._open_tenant(org_id, create, first_read)
                finally:
                    self._open_turns.release()
                self._open[org_id] = db
                self.peak_open = max(self.peak_open, len(self._open))
            else:
                self._open.move_to_end(org_id)
            db.leases += 1  # leased before eviction runs, so it can never pick this one
        self._opening.pop(org_id, None)
        self._evict_over_cap()
        return db

    async def _take_open_turn(self) -> None:
        """Wait until fewer than `opens_at_once` opens are in flight (module docstring)."""
        self.opens_waiting += 1
        try:
            await self._open_turns.acquire()
        finally:
            self.opens_waiting -= 1

    async def _wait_for_closes(self) -> None:
        """Backpressure for misses: while more than MAX_CLOSING evicted tenants are still
        closing, wait for the oldest, so closes lagging behind opens cannot pile up open
        files. `asyncio.wait`, not `await`: a cancelled request must not cancel a close."""
        while len(self._evicting) > MAX_CLOSING:
            await asyncio.wait([next(iter(self._evicting.values()))])

    async def _open_tenant(
        self, org_id: str, create: bool, first_read: FirstRead[Any] | None = None
    ) -> Database:
        path = self.tenant_path(org_id)
        self.opens += 1
        closes = self._closes_for_this_hop()

        def before_connect() -> None:  # on the thread: no syscall of the miss on the loop
            if closes is not None:
                closes()
            if path.parent.is_symlink():  # planted on disk: never follow it out of data_dir
                raise NotFound("organization not found")

        try:  # mode=rw: a missing file fails here and is never created
            # Migrations are checked in the same hop as the connect (user_version is
            # read; nothing else runs when the tenant is current), on every open: a
            # file restored or copied in while the server runs is brought up to date too.
            db = await Database.open(
                path,
                create=create,
                synchronous=self.synchronous,
                lender=self,
                on_open=_migrate_tenant,
                ready_when=current_check("tenant"),
                first=before_connect,
                first_read=first_read,
                exclusive=self.exclusive,
            )
        except (sqlite3.OperationalError, OSError) as exc:
            # Only a missing file is "not found"; a file that exists but cannot be
            # opened (read-only disk, I/O error, disk full while creating) is a
            # storage fault and must say so: 503/507, never 404.
            if not create and not path.exists():
                raise NotFound("organization not found") from exc
            fault = storage_error(exc, path)
            if fault is None:
                raise
            raise fault from exc
        finally:
            if closes is not None:
                closes()  # a no-op when the hop ran it; else (cancelled first) here, once
        STATS.tenant_opens += 1
        return db

    def _evict_over_cap(self) -> None:
        """Close least recently used idle tenants in the background, off the request path.

        No explicit checkpoint: SQLite checkpoints the WAL itself when the last
        connection to a file closes. A request for a tenant that is still
        closing waits for the close before reopening it. A victim with nothing in
        flight (the usual case) hands its connection over at once, and the
        connections collected meanwhile are closed together: by the next miss's
        open hop, before it connects (`_closes_for_this_hop`), or when no miss
        comes first, in a thread hop of their own (`_close_batches`). Under churn a
        miss used to pay a second hop, with a thread lent and taken back, just to
        close its victim (docs/tenants.md).
        """
        while len(self._open) > self.max_open:
            victim = next((oid for oid, db in self._open.items() if db.leases == 0), None)
            if victim is None:
                break  # everything is busy; the cap is exceeded only while requests run
            db = self._open.pop(victim)
            self.evictions += 1
            conn = db.detach()
            if conn is not None:
                if self._batch_closed is None:
                    self._batch_closed = asyncio.get_running_loop().create_future()
                self._to_close.append((victim, conn))
                self._evicting[victim] = self._batch_closed
                continue
            task = asyncio.create_task(db.close(checkpoint=False), name=f"close-{victim}")
            self._evicting[victim] = task
            task.add_done_callback(functools.partial(self._evicted, victim))
        if self._to_close and len(self._closers) < MAX_CLOSERS:
            closer = asyncio.create_task(self._close_batches(), name="close-tenants")
            self._closers.add(closer)
            closer.add_done_callback(self._closers.discard)

    def _closes_for_this_hop(self) -> _BatchClose | None:
        """The evicted connections waiting to be closed, to close in an open's own hop.

        A miss takes a thread hop anyway; closing the connections handed over so far
        on that thread, just before it connects, saves the close hop of its own (a
        thread lent, woken and taken back). The caller must make sure it runs (see
        `_open_tenant`), so the batch is settled whether or not the open succeeds.
        """
        if not self._to_close:
            return None
        batch, self._to_close = self._to_close, []
        done, self._batch_closed = self._batch_closed, None
        assert done is not None
        loop = asyncio.get_running_loop()
        return _BatchClose(batch, lambda: loop.call_soon_threadsafe(self._batch_done, batch, done))

    def _batch_done(
        self, batch: list[tuple[str, sqlite3.Connection]], done: asyncio.Future[None]
    ) -> None:
        """On the loop: a batch of evicted tenants is closed; reopens may go ahead."""
        for org_id, _ in batch:
            if self._evicting.get(org_id) is done:
                del self._evicting[org_id]
        if not done.done():
            done.set_result(None)

    async def _close_batches(self) -> None:
        """Close the handed-over connections, all that piled up per hop, until none is left.

        Up to MAX_CLOSERS of these run at once: one serial closer fell behind when nine
        requests in ten were misses (each close gives the GIL up and takes it back)."""
        while self._to_close:
            batch, self._to_close = self._to_close, []
            done, self._batch_closed = self._batch_closed, None
            assert done is not None
            thread = self.lend()
            self.close_hops += 1
            try:
                await start_thread(thread)
                await asyncio.wrap_future(thread.submit(_close_connections, batch))
            except Exception as exc:  # never leave a waiting reopen hanging
                log.error("closing %d evicted tenants on a thread failed: %s", len(batch), exc)
                _close_connections(batch)  # rare: on the loop rather than never
            finally:
                self.take_back(thread)
                self._batch_done(batch, done)
        # Out of the closers the moment it stops looking, not a loop turn later (its done
        # callback): a batch handed over in between would find no closer slot free and wait
        # for the next miss's hop, while misses held back by MAX_CLOSING wait for it.
        if (this := asyncio.current_task()) is not None:
            self._closers.discard(this)

    def _evicted(self, org_id: str, task: asyncio.Future[None]) -> None:
        if self._evicting.get(org_id) is task:
            del self._evicting[org_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("closing tenant %s failed: %s", org_id, task.exception())

    async def forget(self, org_id: str) -> None:
        """Close a tenant now (before its folder is archived or discarded)."""
        db = self._open.pop(org_id, None)
        if db is not None:
            await db.close()
        if (closing := self._evicting.get(org_id)) is not None:
            await asyncio.wait([closing])

    async def close_all(self) -> None:
        """Clean shutdown: wait for queued units, checkpoint and close every tenant."""
        self._closing = True
        while self._open:
            _, db = self._open.popitem(last=False)
            await db.close()
        await asyncio.gather(*self._evicting.values(), return_exceptions=True)
        await asyncio.gather(*self._closers, return_exceptions=True)
        while self._idle_threads:
            await stop_thread(self._idle_threads.pop())
        await asyncio.gather(*self._joining, return_exceptions=True)


class _BatchClose:
    """Evicted tenants' connections to close in a miss's open hop, exactly once: by the
    thread before it connects, or by the loop if the hop never ran (a cancelled open)."""

    def __init__(
        self, batch: list[tuple[str, sqlite3.Connection]], settled: Callable[[], object]
    ) -> None:
        self._batch = batch
        self._settled = settled  # tells the loop the batch is closed
        self._claim = threading.Lock()

    def __call__(self) -> None:
        if not self._claim.acquire(blocking=False):
            return
        try:
            _close_connections(self._batch)
        finally:
            self._settled()


def _close_connections(batch: list[tuple[str, sqlite3.Connection]]) -> None:
    """On a lent thread: close evicted tenants' connections (each checkpoints and empties
    its WAL file); one failure is logged and does not keep the others open."""
    for org_id, conn in batch:
        try:
            conn.close()
        except sqlite3.Error as exc:
            log.error("closing tenant %s failed: %s", org_id, exc)


def _migrate_tenant(conn: sqlite3.Connection) -> None:
    """On the tenant's thread, right after connecting: apply what the file lacks (the
    check is one statement when nothing is: `is_current`)."""
    if not is_current(conn, "tenant"):
        apply_migrations(conn, "tenant")


def ensure_fd_budget(max_open: int) -> int:
    """Raise the soft open-file limit to what `max_open` tenants need (never past the
    hard limit) and warn when even that is short; returns the soft limit in force.

    Common soft limits are 1,024: with 3 descriptors per open tenant, a cap of 256
    plus a few hundred client sockets would run into EMFILE under load.
    """
    import resource

    need = max_open * FDS_PER_TENANT + FD_HEADROOM
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit to %d: %s", target, exc)
    if soft != resource.RLIM_INFINITY and soft < need:
        log.warning(
            "open-file limit %d is below the %d that %d open tenants need; lower "
            "RHYTHM_MAX_OPEN_TENANTS or raise the hard limit (ulimit -Hn)",
            soft,
            need,
            max_open,
        )
    return int(soft)


def fitting_cap(max_open: int, fd_limit: int) -> int:
    """The open-tenant cap the open-file limit can hold: never past it, so a large cap on
    a box with a low hard limit means fewer open tenants (and a warning), not EMFILE."""
    fits = max(1, (fd_limit - FD_HEADROOM) // FDS_PER_TENANT)
    if fits >= max_open:
        return max_open
    log.warning(
        "open-file limit %d holds only %d open tenants; using that instead of "
        "RHYTHM_MAX_OPEN_TENANTS=%d (raise the hard limit: ulimit -Hn)",
        fd_limit,
        fits,
        max_open,
    )
    return fits


class DataDirLock:
    """An exclusive lock file so two server processes never serve one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / ".rhythm.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = try_lock(self.path)
        if fd is None:
            raise DataDirError(f"another Rhythm process is already serving {self.path.parent}")
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
