"""Bulk import: many issues (with comments) per transaction, each still a change.

An import is how 1,000,000 issues arrive in minutes (issue 5 asks >= 7.5k/s):
one `mutate` per batch, rows inserted from JSON documents, the search index fed
in the same transaction (tracker.storage.bulk), and one `create` change per
issue and per comment, so the log stays the single source of truth (SPEC §1).

Batches are pipelined (tracker.services.import_batches): while batch k is
written on the tenant's writer thread, batch k+1 is prepared and batch k-1's
events are built on worker threads. The writer spends most of a batch inside
SQLite statements that run without the GIL, so on two cores the Python work
(a sixth of an import) mostly vanishes from the wall clock. Batches still
commit one after another, in order; an error stops the import after the
batches already committed (their events are published).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import islice

from tracker.domain.changes import Actor, ChangeBatch
from tracker.services import import_batches as batches
from tracker.services.access import OrgAccess, ProjectAccess, read
from tracker.services.changes import mutate
from tracker.services.runtime import Core
from tracker.storage import bulk
from tracker.storage.database import WAL_AUTOCHECKPOINT_PAGES, Database

BATCH_SIZE = 5000
IMPORT_CHECKPOINT_PAGES = 32_000  # 128 MB of WAL between checkpoints while importing


@dataclass(frozen=True, slots=True)
class ImportComment:
    author: str
    body: str
    created_at: str


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """One issue as an importer knows it; `stage` is a stage name of the project."""

    title: str
    reporter: str
    created_at: str
    updated_at: str
    stage: str = "Open"
    description: str = ""
    type: str = "task"
    priority: str = "normal"
    resolved_at: str | None = None
    comments: tuple[ImportComment, ...] = field(default_factory=tuple)


async def import_issues(
    core: Core,
    access: ProjectAccess,
    actor: Actor,
    issues: Iterable[ImportIssue],
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Import issues in batches (one transaction each); returns how many were imported.

    `progress`, if given, is called with the running total after each committed batch.
    """
    project_id = access.project.id
    # the lease is held for the whole import: the checkpoint setting belongs to this database
    async with core.tenants.lease(access.org.id) as db, _wide_checkpoints(db):
        plan = await read(core, access, lambda conn: batches.read_plan(conn, project_id))
        chunks = _chunks(issues, batch_size)
        return await _pipeline(core, access, actor, chunks, plan, progress or _quiet)


def _quiet(total: int) -> None:
    return None


@asynccontextmanager
async def _wide_checkpoints(db: Database) -> AsyncIterator[None]:
    """Checkpoint the WAL every IMPORT_CHECKPOINT_PAGES instead of every
    WAL_AUTOCHECKPOINT_PAGES while importing: a batch writes ~10,000 pages, and
    pages written again by the next batches (index and FTS pages) are then
    copied to the database once instead of once per batch. Measured: +3-19 %
    (median +12 %) over five 40,000-issue pairs."""
    await db.write(lambda conn: bulk.set_autocheckpoint(conn, IMPORT_CHECKPOINT_PAGES))
    try:
        yield
    finally:
        await db.write(lambda conn: bulk.set_autocheckpoint(conn, WAL_AUTOCHECKPOINT_PAGES))


async def _pipeline(
    core: Core, access: OrgAccess, actor: Actor, chunks: Iterator[list[ImportIssue]],
    plan: batches.Plan, progress: Callable[[int], None],
) -> int:  # fmt: skip
    """Prepare batch k+1 and publish batch k-1 while batch k is written (module docstring)."""
    total, in_flight, org_id = 0, None, access.org.id
    try:
        # the next chunk is taken on the worker thread too: `issues` may be a parser
        # reading a file (rhythm issue import), which must not run on the event loop
        while prepared := await asyncio.to_thread(_prepare_next, chunks, plan):
            plan = prepared.next_plan
            written = None
            if in_flight is not None:
                written, in_flight = await in_flight, None
            in_flight = asyncio.ensure_future(
                mutate(core, access, actor, functools.partial(batches.write, prepared=prepared))
            )
            if written is not None:
                total += await _publish(core, org_id, actor, written)
                progress(total)
        if in_flight is not None:
            written, in_flight = await in_flight, None
            total += await _publish(core, org_id, actor, written)
            progress(total)
    finally:
        if in_flight is not None:  # stopped by an error: settle the batch still in flight
            await _settle(core, org_id, actor, in_flight)
    return total


def _prepare_next(
    chunks: Iterator[list[ImportIssue]], plan: batches.Plan
) -> batches.Prepared | None:
    chunk = next(chunks, None)
    return None if chunk is None else batches.prepare(chunk, plan)


async def _publish(core: Core, org_id: str, actor: Actor, written: batches.Written) -> int:
    """Build a committed batch's events off the event loop, publish them; its size."""
    changes = await asyncio.to_thread(batches.changes, written, actor)
    core.events.publish(ChangeBatch(org_id, written.batch, changes))
    return len(written.prepared.issues)


async def _settle(
    core: Core, org_id: str, actor: Actor, in_flight: asyncio.Future[batches.Written]
) -> None:
    """Wait for a batch that was already submitted; publish it if it committed."""
    try:
        written = await in_flight
    except Exception:  # the import is failing anyway; the first error is the one to see
        return
    await _publish(core, org_id, actor, written)


async def optimize_search(core: Core, org_id: str) -> None:
    """After a large import: merge the FTS segments and refresh planner statistics."""
    async with core.tenants.lease(org_id) as db:
        await db.write(bulk.optimize)


def _chunks(items: Iterable[ImportIssue], size: int) -> Iterator[list[ImportIssue]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
