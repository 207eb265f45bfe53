"""Writing webhook delivery outcomes: attempts and new states, batched per org.

Each delivery's outcome and its attempt row commit together; the outcomes of all
of an org's hooks that gather for OUTCOME_SECONDS (or OUTCOME_BATCH of them)
share a transaction, written while the senders go on. A 410 turns its hook off,
as a change-logged config change made by the system.
"""

from __future__ import annotations

import asyncio
import contextlib

from tracker.domain.changes import Actor, Entity, Op, Origin
from tracker.services.changes import UnitOfWork, mutate_org
from tracker.services.runtime import Core
from tracker.storage import webhooks as hook_sql

#: The actor of the sender's and the consumer's writes.
SYSTEM = Actor(None, Origin.SYSTEM)

#: Outcomes gather this long, or up to this many, before one transaction writes them:
#: one write per delivery was a DB hop and a COMMIT each (most of the sender's own cost,
#: profiled), and one writer per hook still paid a COMMIT per hook per window. A crash
#: loses at most this window of outcomes; those are sent again.
OUTCOME_SECONDS = 0.05
OUTCOME_BATCH = 256


class OutcomeWriter:
    """One org's outcome writer, shared by its hooks' senders: outcomes gather for
    OUTCOME_SECONDS (or OUTCOME_BATCH) and are written in one unit while the senders go
    on. `flush(hook_id)` writes now and waits until everything queued so far is
    committed; it raises if a write holding that hook's outcomes failed (those rows are
    still pending, so they are sent again: at least once)."""

    def __init__(self, core: Core, org_id: str) -> None:
        self.core, self.org_id = core, org_id
        self._queue: list[hook_sql.Outcome] = []
        self._hooks: list[tuple[str, int | None]] = []  # (hook, response status) per outcome
        self._gathering: asyncio.Future[None] | None = None  # settles with the queue's write
        self._inflight: asyncio.Future[None] | None = None  # the write under way
        self._failed: dict[str, BaseException] = {}  # hook -> why its outcomes were lost
        self._task: asyncio.Task[None] | None = None
        self._now = asyncio.Event()

    def add(self, hook_id: str, outcome: hook_sql.Outcome) -> None:
        """Queue one outcome of `hook_id`'s."""
        self._queue.append(outcome)
        self._hooks.append((hook_id, outcome[5]))
        if self._gathering is None:
            self._gathering = asyncio.get_running_loop().create_future()
        if len(self._queue) >= OUTCOME_BATCH:
            self._now.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._write())

    async def flush(self, hook_id: str) -> None:
        waiting = self._gathering if self._queue else self._inflight
        if waiting is not None and not waiting.done():
            self._now.set()
            # shielded: a sender cancelled at shutdown while waiting here must not cancel
            # the write itself (it flushes again on its way out; tested by a SIGTERM)
            with contextlib.suppress(Exception):
                await asyncio.shield(waiting)
        error = self._failed.pop(hook_id, None)
        if error is not None:
            raise error

    async def _write(self) -> None:
        while self._queue:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), OUTCOME_SECONDS)
            self._now.clear()
            items, self._queue = self._queue, []
            hooks, self._hooks = self._hooks, []
            done, self._gathering = self._gathering, None
            self._inflight = done
            gone = {hook_id for hook_id, status in hooks if status == 410}

            def work(
                uow: UnitOfWork, items: list[hook_sql.Outcome] = items, gone: set[str] = gone
            ) -> None:
                hook_sql.record_attempts(uow.conn, items)
                for hook_id in sorted(gone):
                    disable_hook(uow, hook_id, "gone")

            try:
                await mutate_org(self.core, self.org_id, SYSTEM, work)
            except Exception as exc:
                for hook_id, _ in hooks:
                    self._failed[hook_id] = exc
                if done is not None and not done.done():
                    done.set_exception(exc)
                    done.exception()  # retrieved: waiters learn of it through _failed
                continue
            if done is not None and not done.done():
                done.set_result(None)


def disable_hook(uow: UnitOfWork, hook_id: str, reason: str) -> None:
    """Turn a hook off (a config change: logged as the system's)."""
    row = hook_sql.hook_by_id(uow.conn, hook_id)
    if row is None or not row["enabled"]:
        return
    values = {"enabled": 0, "disabled_reason": reason, "updated_at": uow.at}
    hook_sql.update_hook(uow.conn, hook_id, values)
    uow.record(Entity.WEBHOOK, hook_id, Op.UPDATE, project=row["project_id"], field="enabled",
               old=True, new=False, meta={"reason": reason})  # fmt: skip
