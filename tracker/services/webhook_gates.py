"""A counting gate for the webhook sender's concurrency bounds (overall and per host).

Like `asyncio.Semaphore`, but entering while there is room is a plain decrement
with no coroutine: the sender enters two gates per POST, and `async with` on two
semaphores was a measurable share of its event-loop time (profiled). Waiters are
served first come, first served; a slot freed while someone waits is handed to
them directly, so a late arrival cannot overtake a waiter.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Gate:
    """At most `limit` holders; `try_enter()` or `await enter()`, then `leave()`."""

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_enter(self) -> bool:
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return True
        return False

    async def enter(self) -> None:
        if self.try_enter():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # the slot was handed over as we were cancelled: pass it on
            raise

    def leave(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                waiter.set_result(None)
                return
        self.free += 1
