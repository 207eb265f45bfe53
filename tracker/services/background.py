"""Background services: the one place long-running work (hub, delivery, scheduler) starts.

A feature implements `BackgroundService` and is registered on the Core's
`background` registry; `tracker.core.open_core` starts every registered
service after the databases are open and stops them, newest first, before
the databases close (see docs/architecture.md, "Background services").
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class BackgroundService(Protocol):
    """Something that runs beside requests for the life of a core."""

    name: str

    async def start(self) -> None:
        """Return promptly; spawn (and keep) the service's own tasks."""
        ...

    async def stop(self) -> None:
        """Cancel and await the service's tasks; must not raise."""
        ...


class BackgroundServices:
    """The registry on the Core: `add` in start order; stopped in reverse order."""

    def __init__(self) -> None:
        self._registered: list[BackgroundService] = []
        self._started: list[BackgroundService] = []

    def add(self, service: BackgroundService) -> None:
        """Register a service; it starts with the others when the core starts them."""
        self._registered.append(service)

    @property
    def registered(self) -> tuple[BackgroundService, ...]:
        return tuple(self._registered)

    @property
    def running(self) -> tuple[BackgroundService, ...]:
        return tuple(self._started)

    async def start(self) -> None:
        """Start each registered service not yet running, in order.

        A service that fails to start is logged, the ones already started are
        stopped (newest first) and the error is raised: a core never runs with
        half of its background work.
        """
        for service in self._registered:
            if service in self._started:
                continue
            try:
                await service.start()
            except BaseException:
                log.exception("background service %s failed to start", service.name)
                await self.stop()
                raise
            self._started.append(service)

    async def stop(self) -> None:
        """Stop every running service, newest first; a failing stop is logged, never raised."""
        while self._started:
            service = self._started.pop()
            try:
                await service.stop()
            except Exception:  # stop must not raise; one bad service cannot keep DBs open
                log.exception("background service %s failed to stop", service.name)
