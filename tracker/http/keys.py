"""Typed application keys: everything the app keeps in its state is declared here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from tracker.core import Core, ServiceFactory
from tracker.services.accounts import Principal
from tracker.settings import Settings

#: Plugin mode: a host's identity provider maps a request to a Principal (or None).
IdentityProvider = Callable[[web.Request], Awaitable[Principal | None]]

CORE = web.AppKey("core", Core)
SETTINGS = web.AppKey("settings", Settings)
IDENTITY = web.AppKey("identity", object)  # IdentityProvider | None (AppKey needs a class)
ORIGIN = web.AppKey("origin", str)  # change-log origin of this door: "api" or "plugin"


@dataclass
class Lifecycle:
    """Server state the middleware reads: `draining` while a graceful shutdown drains."""

    draining: bool = False


LIFECYCLE = web.AppKey("lifecycle", Lifecycle)

#: Plugin mode: background services a host added (tracker.plugin.subscribe), started
#: with the app's core after Rhythm's own.
HOST_SERVICES = web.AppKey("host_services", list[ServiceFactory])
