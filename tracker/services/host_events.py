"""Delivering committed changes to a plugin host's callback, in process (SPEC §10, §14).

A `HostSubscriber` is a background service of the core: on start it subscribes
to the event bus; each committed batch is queued (the bus contract: never block)
and one task per subscriber hands them to the host's coroutine in commit order,
either as the `ChangeBatch` itself or rendered into SPEC §7 event objects (the
same bytes webhooks and WebSockets send). A callback that raises is logged and
delivery goes on; a slow one delays only its own queue.

Delivery is in-process and at most once: batches still queued when the process
dies are not redelivered. A host that must not miss any reads the change feed
with a durable cursor (`services.feed_consumer.FeedConsumer`) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from tracker.domain.changes import ChangeBatch
from tracker.services.event_objects import Event, render
from tracker.services.runtime import Core

log = logging.getLogger(__name__)

#: A host coroutine that receives each committed batch.
BatchCallback = Callable[[ChangeBatch], Awaitable[None]]
#: A host coroutine that receives each rendered event, with the id of its org.
EventCallback = Callable[[str, Event], Awaitable[None]]

#: Batches waiting for a slow callback beyond this are dropped (and logged).
MAX_QUEUE = 10_000
#: How long `stop` waits for queued batches to be delivered before giving up.
DRAIN_SECONDS = 5.0


class HostSubscriber:
    """One host callback as a background service (see the module docstring)."""

    def __init__(
        self,
        core: Core,
        *,
        on_batch: BatchCallback | None = None,
        on_event: EventCallback | None = None,
        name: str = "host-subscriber",
    ) -> None:
        if (on_batch is None) == (on_event is None):
            raise ValueError("give exactly one of on_batch and on_event")
        self.name = name
        self.core = core
        self.on_batch = on_batch
        self.on_event = on_event
        self.dropped = 0
        self._queue: asyncio.Queue[ChangeBatch] = asyncio.Queue(MAX_QUEUE)
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._deliver(), name=self.name)
        self._unsubscribe = self.core.events.subscribe(self._enqueue)

    def _enqueue(self, batch: ChangeBatch) -> None:
        try:
            self._queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning(
                "%s: queue full, batch %s of org %s dropped", self.name, batch.seq, batch.org_id
            )

    async def _deliver(self) -> None:
        while True:
            batch = await self._queue.get()
            try:
                await self._hand_over(batch)
            except Exception:
                log.exception("%s: the host callback failed on batch %s", self.name, batch.seq)
            finally:
                self._queue.task_done()

    async def _hand_over(self, batch: ChangeBatch) -> None:
        if self.on_batch is not None:
            await self.on_batch(batch)
            return
        assert self.on_event is not None
        for event in await render(self.core, batch.org_id, [batch]):
            await self.on_event(batch.org_id, event)

    async def idle(self) -> None:
        """Wait until every batch queued so far has been handed over (tests, shutdown)."""
        await self._queue.join()

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is None:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.idle(), DRAIN_SECONDS)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
