"""A durable consumer of the change feed, run as a background service.

Script triggers, webhook delivery and notifications are each one of these:

    consumer = FeedConsumer(core, "webhooks", handle, resume=orgs_with_hooks)
    core.background.add(consumer)

`handle(org_id, page)` processes one `FeedPage` (read as the system) and must
advance its cursor to `page.next_seq` inside the unit of work that commits its
own writes (`uow.advance_cursor(consumer.name, page.next_seq)`), so a crash
re-delivers the page and a commit never does: at least once, in seq order,
never twice after a commit. The consumer wakes when the event bus publishes a
batch of an org, and at start for every org `resume()` names (a backlog left by
a restart). Orgs are served one page at a time in turn, so one busy org cannot
starve the others; a failing `handle` is logged and retried after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from tracker.domain.changes import ChangeBatch
from tracker.services import feed
from tracker.services.runtime import Core

log = logging.getLogger(__name__)

Handle = Callable[[str, feed.FeedPage], Awaitable[None]]
Resume = Callable[[], Awaitable[list[str]]]

#: Pause before retrying an org whose handler failed (seconds).
RETRY_SECONDS = 5.0


class FeedConsumer:
    """See the module docstring. Implements the background-service protocol."""

    def __init__(
        self,
        core: Core,
        name: str,
        handle: Handle,
        *,
        resume: Resume | None = None,
        page_size: int = feed.DEFAULT_LIMIT,
    ) -> None:
        self.core = core
        self.name = name
        self._handle = handle
        self._resume = resume
        self._page_size = page_size
        self._dirty: dict[str, None] = {}  # insertion-ordered set: the round-robin queue
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._busy = False

    def poke(self, org_id: str) -> None:
        """Ask for `org_id` to be read (called by the bus, or by hand after a config change)."""
        self._dirty[org_id] = None
        self._wake.set()

    def _on_batch(self, batch: ChangeBatch) -> None:
        self.poke(batch.org_id)

    async def start(self) -> None:
        self._unsubscribe = self.core.events.subscribe(self._on_batch)
        if self._resume is not None:
            for org_id in await self._resume():
                self.poke(org_id)
        self._task = asyncio.create_task(self._run(), name=f"feed-consumer-{self.name}")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def idle(self) -> None:
        """Wait until every org that was poked has been read up to its head (tests, CLI)."""
        while self._dirty or self._wake.is_set() or self._busy:
            await asyncio.sleep(0.01)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                org_id = next(iter(self._dirty))
                del self._dirty[org_id]
                self._busy = True
                try:
                    more = await self._step(org_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("feed consumer %s failed on org %s", self.name, org_id)
                    asyncio.get_running_loop().call_later(RETRY_SECONDS, self.poke, org_id)
                    continue
                finally:
                    self._busy = False
                if more:
                    self._dirty[org_id] = None  # back of the queue: others get a turn

    async def _step(self, org_id: str) -> bool:
        """Handle one page of `org_id`; True when more is waiting."""
        start = await feed.cursor_of(self.core, org_id, self.name)
        page = await feed.since(self.core, org_id, start, limit=self._page_size)
        if page.next_seq > start:
            await self._handle(org_id, page)
        return not page.at_head
