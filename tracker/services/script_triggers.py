"""What starts script runs: the change feed (event triggers) and the clock (schedules).

Event triggers are the durable feed consumer named "scripts": each event of a
committed batch runs every enabled script of its project that listens for its
name, in seq order. The run log's unique (script, seq) makes a re-delivered
batch (a crash before the cursor moved) run nothing twice. Cascades: a
person's change runs scripts at depth 1, a script's change at its depth + 1
(carried in the change rows' meta), nothing beyond MAX_DEPTH, and a script never
reacts to its own changes.

Schedules: every enabled `on_schedule` is due when its latest cron tick (UTC)
is newer than the last tick it ran for; a tick missed while the server was
down therefore runs once at start, and a tick still running is not started
again (no overlap). The clock is injectable here, and only here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

from tracker.domain.changes import ChangeBatch, Entity, Origin
from tracker.domain.ids import iso, utcnow
from tracker.services import feed
from tracker.services.access import read_org
from tracker.services.changes import Actor, mutate_org
from tracker.services.event_objects import render
from tracker.services.feed_consumer import FeedConsumer
from tracker.services.runtime import Core
from tracker.services.script_runs import MAX_DEPTH, Trigger, execute, skip
from tracker.services.scripts import CONSUMER
from tracker.storage import scripts as script_sql

log = logging.getLogger(__name__)

#: Batches per feed page: small, so orgs take turns often (fairness between tenants).
PAGE_SIZE = 20
#: Script runs one org gets before the next org's turn.
RUNS_PER_TURN = 8
#: An org this many changes behind the head sheds load: its event runs are logged as
#: `skipped` (never dropped silently) until it has caught up.
OVERLOAD_BEHIND = 5_000
OVERLOADED = "overloaded: the org's scripts fell too far behind its changes"


async def scripts_with(core: Core, org_id: str, kind: str) -> list[dict[str, Any]]:
    """Enabled scripts of the org with at least one trigger of `kind` (triggers parsed)."""
    rows = await read_org(core, org_id, lambda conn: script_sql.enabled_scripts(conn, None))
    out = []
    for row in rows:
        row["parsed"] = json.loads(row["triggers"])
        if any(t["kind"] == kind for t in row["parsed"]):
            out.append(row)
    return out


class _ScriptFeed(FeedConsumer):
    """The feed consumer, not even woken for orgs known to have no scripts: such an org
    costs nothing per change. (Orgs not known either way are read once to find out.)"""

    def __init__(self, core: Core, owner: ScriptEvents) -> None:
        super().__init__(core, CONSUMER, owner.handle, page_size=PAGE_SIZE)
        self._owner = owner

    def _on_batch(self, batch: ChangeBatch) -> None:
        if any(c.entity == Entity.SCRIPT for c in batch.changes):
            self._owner.scripts_changed(batch.org_id)
        if batch.org_id not in self._owner.quiet:
            super()._on_batch(batch)


class ScriptEvents:
    """Event triggers as a background service (`start`, `stop`).

    At start the consumer runs at once (every new batch wakes it); the core's start-up
    scan (services/tenant_scan.py) then pokes each org with an enabled script, so a
    backlog left by the last run is read, and marks the others quiet.
    """

    name = "script-events"

    def __init__(self, core: Core) -> None:
        self.core = core
        self.quiet: set[str] = set()  # orgs known to have no enabled script
        self._changes: dict[str, int] = {}  # org -> script changes seen (a generation)
        # orgs whose scripts changed while a scan ran: its "none" may be stale for them
        self._changed_in_scan: set[str] = set()
        self._scans = 0  # passes registered and not done
        self.consumer = _ScriptFeed(core, self)

    async def start(self) -> None:
        await self.consumer.start()
        self._scans += 1
        self.core.scan.want("script-events", script_sql.any_enabled, self._scanned, self._done)

    async def stop(self) -> None:
        await self.consumer.stop()

    async def idle(self) -> None:
        await self.core.scan.idle()
        await self.consumer.idle()

    def scripts_changed(self, org_id: str) -> None:
        self._changes[org_id] = self._changes.get(org_id, 0) + 1
        self.quiet.discard(org_id)
        if self._scans:
            self._changed_in_scan.add(org_id)

    def _scanned(self, org_id: str, has_scripts: bool) -> None:
        if has_scripts:
            self.consumer.poke(org_id)
        elif org_id not in self._changed_in_scan:
            self.quiet.add(org_id)

    def _done(self) -> None:
        self._scans -= 1
        if not self._scans:
            self._changed_in_scan.clear()

    async def handle(self, org_id: str, page: feed.FeedPage) -> None:
        """Run the page's event scripts, at most RUNS_PER_TURN before other orgs get a turn;
        an org more than OVERLOAD_BEHIND changes behind records its runs as skipped."""
        generation = self._changes.get(org_id, 0)
        scripts = await scripts_with(self.core, org_id, "event")
        no_scripts = not scripts and not await read_org(self.core, org_id, script_sql.any_enabled)
        if no_scripts and self._changes.get(org_id, 0) == generation:  # none saved meanwhile
            self.quiet.add(org_id)
        behind = (await feed.head(self.core, org_id)) - page.next_seq if scripts else 0
        done_to, runs = page.next_seq, 0
        for index, batch in enumerate(page.batches if scripts else ()):
            if runs >= RUNS_PER_TURN:
                done_to = page.batches[index - 1].seq
                self.consumer.poke(org_id)  # the rest of the page, after the other orgs
                break
            runs += await self._batch(org_id, batch, scripts, behind > OVERLOAD_BEHIND)
        await mutate_org(
            self.core,
            org_id,
            Actor(None, Origin.SYSTEM),
            lambda uow: uow.advance_cursor(CONSUMER, done_to),
        )

    async def _batch(
        self, org_id: str, batch: ChangeBatch, scripts: list[dict[str, Any]], shed: bool
    ) -> int:
        """Run (or, shedding load, log as skipped) the scripts one batch sets off."""
        first = batch.changes[0]
        meta = first.meta or {}
        source = meta.get("script") if str(first.origin) == Origin.SCRIPT else None
        depth = int(meta.get("depth", 1)) + 1 if source else 1
        if depth > MAX_DEPTH:
            return 0
        runs = 0
        for event in await render(self.core, org_id, [batch]):
            for script in scripts:
                if script["project_id"] != event.project_id or script["id"] == source:
                    continue
                if not any(t.get("event") == event.name for t in script["parsed"]):
                    continue
                if await self._ran(org_id, script["id"], event.seq):
                    continue
                trigger = Trigger("event", event=event.name, seq=event.seq)
                if shed:
                    await skip(self.core, org_id, script, trigger, OVERLOADED)
                    continue
                runs += 1
                await execute(
                    self.core,
                    org_id,
                    script,
                    trigger,
                    event=event.data,
                    issue_id=event.issue_id,
                    depth=depth,
                )
        return runs

    async def _ran(self, org_id: str, script_id: str, seq: int) -> bool:
        return await read_org(
            self.core, org_id, lambda conn: script_sql.ran_for_seq(conn, script_id, seq)
        )


def latest_tick(cron: str, now: datetime) -> datetime:
    """The most recent tick of `cron` at or before `now`."""
    return croniter(cron, now + timedelta(microseconds=1)).get_prev(datetime)


class ScriptSchedules:
    """Schedules as a background service; `clock` is the one injection point for tests."""

    name = "script-schedules"

    def __init__(
        self, core: Core, clock: Callable[[], datetime] = utcnow, interval: float = 1.0
    ) -> None:
        self.core = core
        self.clock = clock
        self.interval = interval
        self.orgs: set[str] = set()
        self.running: dict[tuple[str, str], asyncio.Task[Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        self._unsubscribe = self.core.events.subscribe(self._on_batch)
        self.core.scan.want("script-schedules", script_sql.any_enabled, self._scanned)
        self._task = asyncio.create_task(self._loop(), name="script-schedules")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        tasks = [t for t in (self._task, *self.running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _on_batch(self, batch: ChangeBatch) -> None:
        if any(c.entity == Entity.SCRIPT for c in batch.changes):
            self.orgs.add(batch.org_id)

    def _scanned(self, org_id: str, has_scripts: bool) -> None:
        if has_scripts:  # a tick missed while the server was down runs at the next loop
            self.orgs.add(org_id)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("script schedules failed")
            await asyncio.sleep(self.interval)

    async def run_due(self) -> list[asyncio.Task[Any]]:
        """Start every due schedule (one tick each, none already running); returns the runs."""
        now, started = self.clock(), []
        for org_id in sorted(self.orgs):
            for script in await scripts_with(self.core, org_id, "schedule"):
                for trigger in script["parsed"]:
                    if trigger["kind"] == "schedule":
                        task = await self._maybe_run(org_id, script, trigger["cron"], now)
                        if task is not None:
                            started.append(task)
        return started

    async def _maybe_run(
        self, org_id: str, script: dict[str, Any], cron: str, now: datetime
    ) -> asyncio.Task[Any] | None:
        key = (script["id"], cron)
        if key in self.running:
            return None  # the previous tick is still running: never overlap
        last = await read_org(
            self.core, org_id, lambda conn: script_sql.last_tick(conn, script["id"], cron)
        )
        tick = iso(latest_tick(cron, now))
        if tick <= (last or script["created_at"]):
            return None
        trigger = Trigger("schedule", at=tick, cron=cron)
        task = asyncio.create_task(execute(self.core, org_id, script, trigger))
        self.running[key] = task
        task.add_done_callback(lambda _: self.running.pop(key, None))
        return task

    async def idle(self) -> None:
        """Wait for every started run (tests)."""
        while self.running:
            await asyncio.gather(*self.running.values(), return_exceptions=True)
