"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web

from tracker.domain.models.accounts import Health
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_body, json_response
from tracker.services.access import UserAccess
from tracker.services.readiness import disk_checks

_LIVE = Health(status="ok").model_dump_json().encode()


async def live(call: Call[UserAccess]) -> web.Response:
    """The process answers; kept to a constant body so it costs nothing."""
    return json_body(_LIVE)


async def ready(call: Call[UserAccess]) -> web.Response:
    """The system database answers, the data directory takes a write, the disk has room.

    Writability is probed by writing a file (off the event loop), not by
    os.access: a read-only mount or a root-owned folder fools access() when
    running as root.
    """
    checks: dict[str, str] = {}
    try:
        await call.core.system.read(lambda conn: conn.execute("SELECT 1").fetchone())
        checks["system_db"] = "ok"
    except Exception as exc:  # readiness reports, it does not raise
        checks["system_db"] = f"error: {exc}"
    checks.update(await asyncio.to_thread(disk_checks, call.core.settings))
    healthy = all(value == "ok" for value in checks.values())
    body = Health(status="ok" if healthy else "unavailable", checks=checks)
    return json_response(body, status=200 if healthy else 503)


ROUTES = [
    Route("GET", "/health/live", live, Permission.PUBLIC, "Liveness", response=Health, tag="ops"),
    Route(
        "GET",
        "/health/ready",
        ready,
        Permission.PUBLIC,
        "Readiness",
        response=Health,
        errors=(503,),
        tag="ops",
    ),
]
