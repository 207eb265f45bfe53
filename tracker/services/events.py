"""The in-process event bus: committed change batches fan out to subscribers.

Publishing happens on the event loop strictly after COMMIT, so subscribers
(WebSocket hub, script runner, webhook outbox, sync notifier) never run inside
a writer's transaction and never see a rolled-back change. A subscriber is a
plain callable that must not block: it queues work of its own and returns. One
failing subscriber is logged and never stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from tracker.domain.changes import ChangeBatch

log = logging.getLogger(__name__)


Subscriber = Callable[[ChangeBatch], None]


class EventBus:
    """Subscribe/unsubscribe and publish; see the module docstring for the contract."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns the function that removes it."""
        self._subscribers.append(subscriber)
        return lambda: self.unsubscribe(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def publish(self, batch: ChangeBatch) -> None:
        if not batch.changes:
            return
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(batch)
            except Exception:
                log.exception("event subscriber %r failed", subscriber)
