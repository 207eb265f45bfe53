"""Plugin mode's API for host applications: events in process, and people on first sight.

A host builds Rhythm's app with `tracker.http.app.create_app(settings, identity=...)`,
mounts it with `add_subapp`, and may, before the app starts:

    sub = create_app(settings, identity=identity)
    events = tracker.plugin.subscribe_events(sub, on_event)   # SPEC §7 event objects
    changes = tracker.plugin.subscribe(sub, on_batch)         # raw ChangeBatch records
    host.add_subapp("/tracker/", sub)

and, inside its identity provider, map its own users to Rhythm accounts:

    user = await tracker.plugin.ensure_user(sub, email, display_name)

This module is the stable surface docs/plugin-mode.md documents; what it hands
out (`ChangeBatch`, `Event`, `User`) are the same types Rhythm uses inside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from tracker.domain.changes import ChangeBatch
from tracker.domain.models.accounts import User
from tracker.http.keys import CORE, HOST_SERVICES
from tracker.services import accounts
from tracker.services.event_objects import Event
from tracker.services.host_events import BatchCallback, EventCallback, HostSubscriber
from tracker.services.runtime import Core

__all__ = [
    "BatchCallback",
    "ChangeBatch",
    "Event",
    "EventCallback",
    "Subscription",
    "ensure_user",
    "subscribe",
    "subscribe_events",
]


@dataclass
class Subscription:
    """A host's subscription; its subscriber exists while the app's core is open."""

    name: str
    subscriber: HostSubscriber | None = field(default=None, repr=False)

    async def idle(self) -> None:
        """Wait until every change committed so far has reached the callback."""
        if self.subscriber is not None:
            await self.subscriber.idle()

    @property
    def dropped(self) -> int:
        """Batches dropped because the callback fell more than 10,000 behind."""
        return 0 if self.subscriber is None else self.subscriber.dropped


def subscribe(app: web.Application, callback: BatchCallback) -> Subscription:
    """Call `await callback(batch)` for every committed change batch of every org, in
    commit order, after COMMIT. Call before the app starts."""
    return _add(app, lambda core, name: HostSubscriber(core, on_batch=callback, name=name))


def subscribe_events(app: web.Application, callback: EventCallback) -> Subscription:
    """Call `await callback(org_id, event)` for every SPEC §7 event (the webhook body is
    `event.body`, decoded `event.data`), in commit order. Call before the app starts."""
    return _add(app, lambda core, name: HostSubscriber(core, on_event=callback, name=name))


def _add(app: web.Application, build: Callable[[Core, str], HostSubscriber]) -> Subscription:
    if app.frozen:
        raise RuntimeError("subscribe before the app starts (add_subapp, then run)")
    services = app[HOST_SERVICES]
    subscription = Subscription(f"host-subscriber-{len(services) + 1}")

    def factory(core: Core) -> HostSubscriber:
        subscription.subscriber = build(core, subscription.name)
        return subscription.subscriber

    services.append(factory)
    return subscription


async def ensure_user(app: web.Application, email: str, display_name: str = "") -> User:
    """The Rhythm account of a host user, created on first sight (it has no Rhythm
    password: the host signs people in). Use its `id` as the Principal's user id."""
    return await accounts.provision_user(app[CORE], email, display_name)
