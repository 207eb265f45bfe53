"""Writing webhook delivery outcomes: attempts and new states, batched per hook.

Each delivery's outcome and its attempt row commit together; the outcomes of one
hook that gather for OUTCOME_SECONDS (or OUTCOME_BATCH of them) share a
transaction, written while the sender goes on. A 410 turns the hook off, as a
change-logged config change made by the system.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tracker.domain.changes import Actor, Entity, Op, Origin
from tracker.services.changes import UnitOfWork, mutate_org
from tracker.services.runtime import Core
from tracker.storage import webhooks as hook_sql

#: The actor of the sender's and the consumer's writes.
SYSTEM = Actor(None, Origin.SYSTEM)

#: Outcomes gather this long, or up to this many, before one transaction writes them:
#: one write per delivery was a DB hop and a COMMIT each (most of the sender's own cost,
#: profiled). A crash loses at most this window of outcomes; those are sent again.
OUTCOME_SECONDS = 0.02
OUTCOME_BATCH = 64


class OutcomeWriter:
    """One hook's outcome writer: outcomes gather for OUTCOME_SECONDS (or OUTCOME_BATCH)
    and are written in one unit while the sender goes on; `flush()` writes now and waits
    until everything queued is committed."""

    def __init__(self, core: Core, org_id: str, hook_id: str) -> None:
        self.core, self.org_id, self.hook_id = core, org_id, hook_id
        self._queue: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()

    def add(self, outcome: dict[str, Any]) -> None:
        self._queue.append(outcome)
        if len(self._queue) >= OUTCOME_BATCH:
            self._now.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write())

    async def flush(self) -> None:
        self._now.set()
        if self._task is not None:
            # shielded: a sender cancelled at shutdown while waiting here must not cancel
            # the write itself (it flushes again on its way out; tested by a SIGTERM)
            await asyncio.shield(self._task)
        if self._queue:  # left by a failed write: try once more, in this task
            await self._write()

    async def _write(self) -> None:
        while self._queue:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), OUTCOME_SECONDS)
            self._now.clear()
            items, self._queue = self._queue, []

            def work(uow: UnitOfWork, items: list[dict[str, Any]] = items) -> None:
                hook_sql.record_attempts(uow.conn, items)
                if any(item["response_status"] == 410 for item in items):
                    disable_hook(uow, self.hook_id, "gone")

            await mutate_org(self.core, self.org_id, SYSTEM, work)


def disable_hook(uow: UnitOfWork, hook_id: str, reason: str) -> None:
    """Turn a hook off (a config change: logged as the system's)."""
    row = hook_sql.hook_by_id(uow.conn, hook_id)
    if row is None or not row["enabled"]:
        return
    values = {"enabled": 0, "disabled_reason": reason, "updated_at": uow.at}
    hook_sql.update_hook(uow.conn, hook_id, values)
    uow.record(Entity.WEBHOOK, hook_id, Op.UPDATE, project=row["project_id"], field="enabled",
               old=True, new=False, meta={"reason": reason})  # fmt: skip
