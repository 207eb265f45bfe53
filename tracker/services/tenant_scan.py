"""One pass over every live tenant after start-up, shared by the services that need it.

Script triggers and notifications must learn, at start, which orgs have work
left by the last run (enabled scripts, an unread feed, queued notices). Each
used to read every tenant in its own `start`, before the server answered:
with 10,000 orgs that was three opens per tenant and ~43 s before `/health`
said ready (docs/tenants.md, "Start-up with many tenants"). Now a service
registers what it reads:

    core.scan.want("scripts", script_sql.any_enabled, found, done=finished)

and `open_core` begins the pass once every service has started: the server
answers meanwhile. Each tenant is opened once for all readers (one read unit
runs them all), WORKERS tenants at a time, through `TenantPool.lease_cold`, so the
pass never evicts more than WORKERS of the tenants that serve requests. `found(org_id, value)` runs
on the event loop after each tenant; `done()` after the last one. A reader
registered while a pass runs (a service restarted) gets a pass of its own.

A tenant whose file has not changed since the last pass is not opened: its answers
come from the memo that pass left (scan_memo.py), so a restart reads only the
tenants written since. Readers therefore return what JSON holds (scalars, tuples).

Nothing is lost meanwhile: a feed consumer is woken by every new batch from
the moment it starts, and an org the pass has not reached yet keeps its unread
feed and queue on disk (the cursors only move in the consumers' own commits).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tracker.services.scan_memo import MEMO_FILE, reader_id, recall_all
from tracker.storage import orgs as org_sql

if TYPE_CHECKING:
    from tracker.services.runtime import Core

log = logging.getLogger(__name__)

#: Tenants read at once. An open is mostly waiting (thread hand-offs, file creation and
#: removal for the WAL), so a few in flight finish the pass sooner; each holds one slot
#: of the LRU at its cold end (docs/tenants.md).
WORKERS = 4

#: Orgs answered from the memo between two yields of the event loop.
HAND_OVER_BATCH = 500

Reader = Callable[[sqlite3.Connection], Any]
Found = Callable[[str, Any], None]


@dataclass(frozen=True)
class Want:
    """What one service reads from every tenant, and where the answers go."""

    name: str
    read: Reader
    found: Found
    done: Callable[[], None] | None = None


class TenantScan:
    """The pass itself (one per core: `core.scan`); see the module docstring."""

    def __init__(self) -> None:
        self._waiting: list[Want] = []
        self._core: Core | None = None
        self._task: asyncio.Task[None] | None = None
        #: Tenants the running pass has still to read (the `rhythm_startup_scan_orgs_left`
        #: gauge: 0 means every service knows where its work is).
        self.orgs_left = 0
        self.passes = 0
        #: Tenants opened and read by passes, and those answered from the memo instead.
        self.read = 0
        self.remembered = 0

    def want(
        self, name: str, read: Reader, found: Found, done: Callable[[], None] | None = None
    ) -> None:
        """Register a reader for the next pass (started at once if the core already began)."""
        self._waiting.append(Want(name, read, found, done))
        if self._core is not None:
            self._kick()

    def begin(self, core: Core) -> None:
        """Start passing over the tenants (open_core, after every service started)."""
        self._core = core
        if self._waiting:
            self._kick()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def idle(self) -> None:
        """Wait until no pass runs and none is due (tests, the benchmark)."""
        while self.running:
            assert self._task is not None
            await asyncio.wait({self._task})

    async def stop(self) -> None:
        """Cancel a running pass (shutdown); what it had not read is read at the next start."""
        self._core = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _kick(self) -> None:
        if not self.running:
            self._task = asyncio.create_task(self._run(), name="tenant-scan")

    async def _run(self) -> None:
        while self._waiting and self._core is not None:
            wants, self._waiting = self._waiting, []
            try:
                await self._pass(self._core, wants)
            except asyncio.CancelledError:
                raise
            except Exception:  # the system DB failed: the readers get no answers this time
                log.exception("tenant scan failed")
            finally:
                self.orgs_left = 0
            for want in wants:
                if want.done is not None:
                    want.done()

    async def _pass(self, core: Core, wants: list[Want]) -> None:
        readers = list(dict.fromkeys(w.read for w in wants))  # two services, one query
        ids = {reader: reader_id(reader) for reader in readers}

        def read_all(conn: sqlite3.Connection) -> dict[str, Any]:
            return {ids[reader]: reader(conn) for reader in readers}

        orgs = [row["id"] for row in await core.system.read(org_sql.all_live_orgs)]
        self.orgs_left = len(orgs)
        self.passes += 1
        names = ", ".join(w.name for w in wants)
        memo_path = core.settings.data_dir / MEMO_FILE
        recalled = await asyncio.to_thread(
            recall_all, memo_path, core.tenants.tenant_path, orgs, list(ids.values())
        )
        memo, keys, to_read = recalled.memo, recalled.keys, recalled.to_read
        log.info("tenant scan for %s: %d orgs, %d to read (the rest unchanged since the "
                 "last pass)", names, len(orgs), len(to_read))  # fmt: skip
        for done, (org_id, values) in enumerate(recalled.known, 1):
            self.orgs_left -= 1
            self.remembered += 1
            self._hand_over(org_id, wants, values, ids)
            if done % HAND_OVER_BATCH == 0:
                await asyncio.sleep(0)  # requests get the loop between batches
        queue = iter(to_read)

        async def worker() -> None:
            for org_id in queue:
                values = await self._scan_one(core, org_id, wants, read_all, ids)
                key = keys[org_id]
                if values is not None and key is not None:
                    memo.keep(org_id, key, values)

        await asyncio.gather(*(worker() for _ in range(min(WORKERS, len(to_read)))))
        if memo.changed:
            await asyncio.to_thread(memo.save, memo_path)
        log.info("tenant scan for %s done", names)

    async def _scan_one(
        self,
        core: Core,
        org_id: str,
        wants: list[Want],
        read_all: Callable[[sqlite3.Connection], dict[str, Any]],
        ids: dict[Reader, str],
    ) -> dict[str, Any] | None:
        try:
            async with core.tenants.lease_cold(org_id) as db:
                values = await db.read(read_all)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one broken tenant must not hide the others' work
            log.warning("tenant scan: org %s not read (%s); its work resumes on its "
                        "next change", org_id, exc)  # fmt: skip
            return None
        finally:
            self.orgs_left -= 1
        self.read += 1
        self._hand_over(org_id, wants, values, ids)
        return values

    def _hand_over(
        self, org_id: str, wants: list[Want], values: dict[str, Any], ids: dict[Reader, str]
    ) -> None:
        for want in wants:
            try:
                want.found(org_id, values[ids[want.read]])
            except Exception:
                log.exception("tenant scan: %s failed on org %s", want.name, org_id)
