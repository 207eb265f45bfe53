"""FairLane: expensive reads on one database take turns, round robin between owners.

One connection runs a tenant's units one at a time. Expensive reads (search,
filters, boards) enter the thread's queue one at a time through this lane, so
cheap units never queue behind more than one of them; and turns go round robin
between owners (users), so one user's eight searches do not hold up another
user's one: the other user's search runs second, not ninth.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator


class FairLane:
    """At most one holder; waiting owners are served in rotation, each in FIFO order."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def queued(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    @contextlib.asynccontextmanager
    async def turn(self, owner: str) -> AsyncIterator[None]:
        if not self._busy and not self._waiting:
            self._busy = True
        else:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(owner, deque()).append(granted)
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._hand_on()  # the turn came as we were cancelled: pass it on
                else:
                    self._forget(owner, granted)
                raise
        try:
            yield
        finally:
            self._hand_on()

    def _hand_on(self) -> None:
        while self._waiting:
            owner, queue = next(iter(self._waiting.items()))
            granted = queue.popleft()
            if queue:
                self._waiting.move_to_end(owner)  # this owner's next one waits a round
            else:
                del self._waiting[owner]
            if not granted.done():
                granted.set_result(None)
                return
        self._busy = False

    def _forget(self, owner: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(owner)
        if queue is not None:
            with contextlib.suppress(ValueError):
                queue.remove(granted)
            if not queue:
                del self._waiting[owner]
