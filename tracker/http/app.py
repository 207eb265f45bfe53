"""create_app(settings, identity=None): the aiohttp application, as root or as a sub-app.

The app opens its Core in a cleanup context and closes it on shutdown. In
plugin mode a host passes `identity` (request -> Principal) and mounts the app
with `add_subapp`; Rhythm's own routes stay under /api/v1 of the mount point.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from tracker.core import open_core
from tracker.http.backup_door import BackupDoor
from tracker.http.binding import ROUTE_TABLE, RouteTable, bind
from tracker.http.front import front
from tracker.http.handlers.docs import setup_docs
from tracker.http.keys import (
    CORE,
    HOST_SERVICES,
    IDENTITY,
    LIFECYCLE,
    ORIGIN,
    SETTINGS,
    IdentityProvider,
    Lifecycle,
)
from tracker.http.middlewares import Cors
from tracker.http.operations import Operations
from tracker.http.router import install as install_router
from tracker.http.routes import all_routes
from tracker.http.ws import install as install_sockets
from tracker.settings import Settings
from tracker.ui import setup_ui


def create_app(
    settings: Settings,
    identity: IdentityProvider | None = None,
    *,
    exclusive: bool = True,
    ui: bool | None = None,
) -> web.Application:
    """Build the app; `exclusive=False` lets a host share a data dir it already locked.

    `ui` mounts the web UI at `/` (default: on, except in plugin mode, where the host
    owns the pages and the app is mounted under a prefix)."""
    # One front layer: timing, request id, the error boundary, CORS and the rate limiter
    # as steps of one call, in that order (tracker/http/front.py). The router wraps every
    # handler in it, so the app has no aiohttp middleware (tracker/http/router.py).
    ops = Operations(settings)
    lifecycle = Lifecycle()
    cors = Cors(settings.cors_origins) if settings.cors_origins else None
    # client_max_size backs up the body reader's own cap (+1 so ours answers first).
    app = web.Application(client_max_size=settings.max_body_bytes + 1)
    # routes matched by a segment tree, each handler inside the front
    install_router(app, front(lifecycle, ops.observer, cors, ops.limiter))
    app[SETTINGS] = settings
    app[IDENTITY] = identity
    app[ORIGIN] = "plugin" if identity is not None else "api"
    app[LIFECYCLE] = lifecycle
    app[HOST_SERVICES] = []  # tracker.plugin.subscribe adds to it before the app starts
    ops.install(app)  # GET /metrics (outside the JSON table) and the limiter's state
    app[ROUTE_TABLE] = RouteTable(tuple(all_routes()))
    for route in app[ROUTE_TABLE].routes:
        app.router.add_route(route.method, route.full_path, bind(route))
    install_sockets(app)  # the WebSocket door: outside the JSON table (see tracker/http/ws.py)

    setup_docs(app)
    if identity is None if ui is None else ui:
        setup_ui(app, lambda app: app[CORE])

    async def core_context(app: web.Application) -> AsyncIterator[None]:
        # Cleanup runs after on_shutdown: background services stop, then databases close.
        services = app[HOST_SERVICES]
        async with open_core(settings, exclusive=exclusive, services=services) as core:
            app[CORE] = core
            # The backup socket only where this process holds the data-dir lock: it
            # then owns every connection (a plugin host's data dir has none).
            door = BackupDoor(core) if exclusive else None
            if door is not None and await door.start():
                # Backups and exports now go through this process: it may hold its
                # tenants' files exclusively (cheaper opens; docs/tenants.md).
                core.tenants.exclusive = settings.exclusive_tenants
            try:
                yield
            finally:
                if door is not None:  # before the databases close: a backup is cancelled
                    await door.stop()

    app.cleanup_ctx.append(core_context)
    return app
