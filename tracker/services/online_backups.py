"""`rhythm backup` taken by the running server, in page batches (docs/operations-data.md,
"Eighth session: backup in page batches on the owning connection").

When a server serves the data dir, the CLI asks it (through the backup socket,
tracker/http/backup_door.py) to take the backup: each database is copied from the
connection the server already owns, one page batch per unit of work on that
database's thread (tracker/storage/page_copy.py). Writes queued meanwhile run
between batches, so a writer waits at most one batch, and no read snapshot is held:
the WAL neither grows nor needs a catch-up checkpoint afterwards.

What follows the pages is today's backup (tracker/services/backups.py): the copy is
sealed (WAL mode, `quick_check`, fsync, rename), attachment files the copy names
are copied, tenants first and the system DB last, then the manifest. That work runs
on a thread of the backup's own, never on a database's thread or the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tracker.domain.ids import is_uuid
from tracker.errors import NotFound
from tracker.services.backups import (
    SYSTEM_FILE,
    BackupReport,
    checksum_of,
    empty_destination,
    live_orgs,
    tenant_entry,
    write_manifest,
)
from tracker.services.runtime import Core
from tracker.storage import page_copy, snapshots
from tracker.storage.database import Database
from tracker.storage.files import private_dir
from tracker.storage.orgs import all_live_orgs
from tracker.storage.page_copy import PageCopy
from tracker.storage.pool import TENANT_FILE

T = TypeVar("T")

#: Pages per step (4 KiB each: 1 MiB). One step is one unit on the database's thread,
#: so this bounds how long a writer can wait behind the backup (measured in
#: docs/operations-data.md, "Eighth session").
BATCH_PAGES = 256
MAX_BATCH_PAGES = 65_536
#: One unit runs batches back to back while no other unit of the database waits, for at
#: most this long (fewer hops through the event loop; a unit that arrives still waits
#: for one batch only).
UNIT_BUDGET_S = 0.02
PROGRESS_EVERY_S = 1.0
BUSY_PAUSE_S = 0.01  # a step that found the source busy is tried again after this
SOCKET_NAME = ".rhythm-backup.sock"

#: Receives progress events: {"event": "copying" | "copied", "db": ..., ...}.
Progress = Callable[[dict[str, Any]], None]


def available() -> bool:
    """Whether this process can copy in page batches (CPython's sqlite3 through ctypes);
    without it the server offers no backup socket and the CLI copies by itself."""
    return page_copy.available()


def socket_path(data_dir: Path) -> Path:
    """The server's backup socket: in the data dir, so whoever may open it may read the
    data anyway (file permission is the authority; it is made 0600)."""
    return data_dir / SOCKET_NAME


def _orgs_of(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(str(r["id"]), str(r["slug"])) for r in all_live_orgs(conn)]


@dataclass
class Plan:
    """A backup checked and ready: its destination exists and is empty."""

    dest: Path
    org_slug: str | None
    orgs: list[tuple[str, str]]
    batch_pages: int = BATCH_PAGES
    entries: list[dict[str, Any]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    checksums: dict[str, dict[str, Any]] = field(default_factory=dict)


async def plan(
    core: Core, dest: Path, org_slug: str | None = None, batch_pages: int = BATCH_PAGES
) -> Plan:
    """Refuse what cannot be backed up (an unknown org, a destination that is not an
    empty directory) before anything is copied; creates the destination."""
    orgs = await core.system.read(_orgs_of)
    if org_slug is not None:
        orgs = [(i, s) for i, s in orgs if s == org_slug]
        if not orgs:
            raise NotFound(f"organization {org_slug} not found")
    await asyncio.to_thread(empty_destination, dest)
    return Plan(dest, org_slug, orgs, max(1, min(batch_pages, MAX_BATCH_PAGES)))


async def run(core: Core, job: Plan, progress: Progress | None = None) -> BackupReport:
    """Take the planned backup; a failure or cancellation leaves no `.partial` file
    and no manifest (copies already sealed stay, as after a crash of the old path)."""
    started = time.monotonic()
    report = progress or (lambda _: None)
    worker = ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="backup", initializer=yield_the_cpu
    )
    try:
        await _run(core, job, worker, report)
        manifest = await _off(
            worker, write_manifest, job.dest, job.org_slug, job.entries, job.missing, job.checksums
        )
    finally:
        worker.shutdown(wait=False)
    return BackupReport(manifest, job.missing, time.monotonic() - started)


async def _run(core: Core, job: Plan, worker: ThreadPoolExecutor, report: Progress) -> None:
    for org_id, slug in job.orgs:
        await _take_tenant(core, job, worker, report, org_id, slug)
    system = job.dest / SYSTEM_FILE  # last: it names every user the tenants name
    await copy_pages(core.system, system, worker, report, "system", job.batch_pages)
    job.checksums[SYSTEM_FILE] = await _off(worker, checksum_of, system)
    if job.org_slug is None:  # orgs created meanwhile are in the copied system DB
        done = {e["id"] for e in job.entries}
        for org_id, slug in await _off(worker, live_orgs, system):
            if org_id not in done:
                await _take_tenant(core, job, worker, report, org_id, slug)


async def _take_tenant(
    core: Core,
    job: Plan,
    worker: ThreadPoolExecutor,
    report: Progress,
    org_id: str,
    slug: str,
) -> None:
    data_dir = core.settings.data_dir
    if not is_uuid(org_id) or not (data_dir / org_id / TENANT_FILE).is_file():
        return  # an org row whose folder was never created holds nothing to copy
    dest_dir = job.dest / org_id
    async with core.tenants.lease(org_id) as db:  # leased: not evicted during the copy
        await copy_pages(db, dest_dir / TENANT_FILE, worker, report, slug, job.batch_pages)
    entry, lost = await _off(
        worker, tenant_entry, data_dir, org_id, dest_dir, job.checksums, f"{org_id}/"
    )
    job.entries.append({**entry, "slug": slug})
    job.missing.extend(f"{slug}: {sha256}" for sha256 in lost)


async def copy_pages(
    db: Database,
    dest: Path,
    worker: ThreadPoolExecutor,
    report: Progress,
    name: str,
    batch_pages: int = BATCH_PAGES,
) -> PageCopy:
    """Copy `db` into `dest` one batch per unit on its thread, then seal the copy."""
    tmp = snapshots.partial_of(dest)
    await _off(worker, _fresh, tmp)
    copy: PageCopy | None = None

    def start(conn: sqlite3.Connection) -> None:
        nonlocal copy
        copy = PageCopy(conn, db.path, tmp)
        copy.open()

    def abort(_: sqlite3.Connection) -> None:
        if copy is not None:  # read on the thread: after `start`, which ran first
            copy.abort()

    began = time.monotonic()
    db.copying += 1  # transactions undo through a savepoint meanwhile (Database._undo)
    try:
        await db.side_job(start)
        assert copy is not None
        await _step_until_done(db, copy, report, name, batch_pages)
        await db.side_job(lambda _: copy.finish())
    except BaseException:
        # shielded: a cancelled backup still ends its SQLite backup and removes the file
        with contextlib.suppress(Exception):
            await asyncio.shield(db.side_job(abort))
        raise
    finally:
        db.copying -= 1
    paged = time.monotonic()
    try:
        await _off(worker, copy.release)  # not on the database's thread: it may wait
        await _off(worker, snapshots.seal, tmp, dest, db.path)
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.shield(_off(worker, _discard, copy, tmp))
        raise
    report(
        {
            "event": "copied",
            "db": name,
            "pages": copy.pagecount,
            "restarts": copy.restarts,
            "copy_s": round(paged - began, 3),  # the page batches
            "seal_s": round(time.monotonic() - paged, 3),  # quick_check, fsync, rename
        }
    )
    return copy


async def _step_until_done(
    db: Database, copy: PageCopy, report: Progress, name: str, batch_pages: int
) -> None:
    next_report = time.monotonic() + PROGRESS_EVERY_S

    def batches(_: sqlite3.Connection) -> bool:
        """Batches while nothing else of the database waits, up to UNIT_BUDGET_S: a unit
        submitted meanwhile waits for one batch; an idle database is copied in fewer
        hops. (`waiting` and `queue_depth` are the loop's counters, read as expensive
        reads read them to yield.)"""
        deadline = time.monotonic() + UNIT_BUDGET_S
        while True:
            before = copy.remaining
            if copy.step(batch_pages):
                return True
            if db.waiting or db.queue_depth or copy.remaining == before:
                return False
            if time.monotonic() >= deadline:
                return False

    while True:
        before = copy.remaining
        if await db.side_job(batches):
            return
        if copy.remaining == before and copy.pagecount:  # busy: nothing copied
            await asyncio.sleep(BUSY_PAUSE_S)
        if time.monotonic() >= next_report:
            next_report = time.monotonic() + PROGRESS_EVERY_S
            done = copy.pagecount - copy.remaining
            report(
                {
                    "event": "copying",
                    "db": name,
                    "copied": done,
                    "pages": copy.pagecount,
                    "restarts": copy.restarts,
                }
            )


def _discard(copy: PageCopy, tmp: Path) -> None:
    copy.release()  # again is harmless
    tmp.unlink(missing_ok=True)


def _fresh(path: Path) -> None:
    """Make room for a new copy at `path` (a leftover `.partial` is removed)."""
    private_dir(path.parent, parents=True)
    path.unlink(missing_ok=True)


#: Nice value of the backup's own thread (Linux: per thread). Its `quick_check` and
#: SHA-256 of a multi-GB copy competed with the server's writer for two cores (writer
#: stalls of 165-209 ms in those phases, docs/operations-data.md "Eighth session").
BACKGROUND_NICE = 10


def yield_the_cpu() -> None:
    """On the backup's thread when it starts: run at a lower CPU priority than the
    server's threads, so the writer gets the core first when both want it."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


async def _off(worker: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
    """Blocking file work of the backup on its own thread (never a database's)."""
    return await asyncio.get_running_loop().run_in_executor(worker, fn, *args)
