"""GET /api/v1/orgs/{org}/ws: the real-time door (SPEC §7; docs/realtime.md).

One handler per socket: authenticate (Bearer header, the web UI's session
cookie from an allowed Origin, or an `auth` first frame), check the org
membership (4404 either way), register with the hub, then read client frames
here while a writer task drains the connection's queue. The hub never touches
the socket; it asks for a close through the connection and this module does it
(flushing first unless the client is too slow, and never waiting forever on a
peer that stopped reading).

This route is not in the JSON route table (it has no request or response body
to document): it is declared in `SOCKET_ROUTES` below with its permission, and
tests/test_meta.py checks that the app serves exactly the JSON table plus these.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from tracker.domain.permissions import Permission
from tracker.errors import RhythmError, ServiceUnavailable
from tracker.http.binding import API_PREFIX
from tracker.http.keys import CORE, IDENTITY, SETTINGS
from tracker.services import accounts
from tracker.services.access import OrgAccess, authorize_org
from tracker.services.hub import (
    FORBIDDEN,
    GOING_AWAY,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHENTICATED,
    Connection,
    Hub,
    error,
    frame,
)
from tracker.services.runtime import Core

log = logging.getLogger(__name__)

#: The web UI's session cookie (an HttpOnly cookie holding the API access token).
SESSION_COOKIE = "rhythm_session"
#: Longest wait for a peer to take our close frame before the connection is dropped.
CLOSE_TIMEOUT = 5.0
#: Longest wait for queued frames to go out before a flushing close.
FLUSH_TIMEOUT = 5.0
#: Who may open the org's socket: any org member (what each sees is decided per project).
SOCKET_PERMISSION = Permission.ORG_READ
#: Query parameters that look like credentials: refused, never read (they land in logs).
_QUERY_TOKENS = ("token", "access_token", "auth", "jwt")


def hub_of(app: web.Application) -> Hub | None:
    """The core's running hub (a background service registered in tracker/core.py)."""
    return next((s for s in app[CORE].background.running if isinstance(s, Hub)), None)


@dataclass(frozen=True)
class SocketRoute:
    """A WebSocket route: registered outside the JSON route table, with its permission."""

    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    permission: Permission
    summary: str

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path


#: Above this many bytes waiting in the transport, frames go through the writer task
#: (which awaits drain) instead of being written directly.
DIRECT_LIMIT = 64 * 1024


def wire_header(size: int) -> bytes:
    """An unmasked, final TEXT frame header (RFC 6455 §5.2): server frames, no extensions."""
    if size < 126:
        return bytes((0x81, size))
    if size < 1 << 16:
        return bytes((0x81, 126)) + size.to_bytes(2, "big")
    return bytes((0x81, 127)) + size.to_bytes(8, "big")


class Refused(Exception):
    """Close the socket with this 4xxx code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class TokenBucket:
    """Client frames per second with a burst (4429 when empty)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


async def socket_endpoint(request: web.Request) -> web.StreamResponse:
    """Upgrade, then run the session; a plain GET gets 426."""
    settings = request.app[SETTINGS]
    ws = web.WebSocketResponse(
        heartbeat=settings.ws_heartbeat,
        max_msg_size=settings.ws_max_frame_bytes,
        compress=False,  # frames are serialized once for all; no per-socket deflate
        autoping=True,
    )
    if not ws.can_prepare(request).ok:
        raise web.HTTPUpgradeRequired(reason="WebSocket upgrade required")
    hub = hub_of(request.app)
    if hub is None:  # a core opened without its background services
        raise ServiceUnavailable("real-time events are not running")
    await ws.prepare(request)
    session = Session(request, ws, hub)
    try:
        await session.run()
    except Refused as refused:
        await session.close(refused.code, refused.reason)
    except Exception:
        log.exception("websocket session failed")
        await session.close(1011, "internal error")
    finally:
        session.disarm()
    return ws


class Session:
    """One socket from upgrade to close."""

    def __init__(self, request: web.Request, ws: web.WebSocketResponse, hub: Hub) -> None:
        self.request = request
        self.ws = ws
        self.core: Core = request.app[CORE]
        self.hub = hub
        self.settings = request.app[SETTINGS]
        self.user_id: str | None = None
        self.conn: Connection | None = None
        self.bucket = TokenBucket(self.settings.ws_frame_rate, self.settings.ws_frame_burst)
        self._expiry: asyncio.TimerHandle | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------

    async def run(self) -> None:
        if self.hub.closing:
            raise Refused(GOING_AWAY, "server shutting down")
        if any(name in self.request.query for name in _QUERY_TOKENS):
            raise Refused(UNAUTHENTICATED, "tokens are never accepted in the query string")
        await self._authenticate_upgrade()
        if self.user_id is None:
            await self._await_auth_frame()
        assert self.user_id is not None
        access = await self._org()
        if self.hub.connections_of(self.user_id) >= self.hub.max_per_user:
            raise Refused(RATE_LIMITED, "too many connections for this user")
        try:
            conn, head = await self.hub.connect(access)
        except RhythmError:
            raise Refused(NOT_FOUND, "organization not found") from None
        self.conn = conn
        conn.on_close = self._on_close
        conn.direct = self._direct
        try:
            user = await accounts.get_user(self.core, self.user_id)
            conn.send(frame({
                "type": "hello", "user": user.model_dump(include={"id", "email", "display_name"}),
                "head": head, "heartbeat": self.settings.ws_heartbeat,
            }))  # fmt: skip
            self._writer = asyncio.create_task(self._write(conn))
            await self._read(conn)
        finally:
            if conn.close_reason is None:  # the peer left
                conn.close(1000, "", flush=False)
            if self._closer is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._closer
            if self._writer is not None:
                self._writer.cancel()
            self.disarm()
            if not conn.done.done():
                conn.done.set_result(None)

    def disarm(self) -> None:
        """Drop the expiry timer (it would keep this session alive until the token's exp)."""
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    def _on_close(self) -> None:
        """The hub (or this session) asked for a close: do it in its own task."""
        if self._closer is None:
            self._closer = asyncio.create_task(self._close_conn())

    async def _close_conn(self) -> None:
        assert self.conn is not None and self.conn.close_reason is not None
        code, reason, flush = self.conn.close_reason
        writer = self._writer
        if writer is not None:
            if not flush:
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
                await asyncio.wait_for(writer, FLUSH_TIMEOUT)
        await self.close(code, reason)

    async def close(self, code: int, reason: str) -> None:
        """Send the close frame; drop the connection if the peer does not take it."""
        if self.ws.closed:
            return
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT)
        except (TimeoutError, ConnectionError):
            transport = self.request.transport
            if transport is not None:
                transport.abort()

    def _direct(self, data: bytes) -> bool:
        """Write a frame now when the socket keeps up: no task wake-up per socket and
        frame (200 sockets x 50 events/s). The frame is complete in one write, so it
        never interleaves with aiohttp's own pings or close frame; compression is off."""
        transport = self.request.transport
        if (
            transport is None
            or self.ws.closed
            or transport.is_closing()
            or transport.get_write_buffer_size() > DIRECT_LIMIT
        ):
            return False
        transport.write(wire_header(len(data)) + data)
        return True

    async def _write(self, conn: Connection) -> None:
        while (data := await conn.next_frame()) is not None:
            await self.ws.send_frame(data, WSMsgType.TEXT)

    # -- authentication ------------------------------------------------------------

    async def _authenticate_upgrade(self) -> None:
        """Header, cookie (same origin or allowed origins only) or the plugin host's identity."""
        identity = self.request.app.get(IDENTITY)
        if identity is not None:
            principal = await identity(self.request)  # type: ignore[operator]
            if principal is not None:
                self.user_id = principal.user_id
                return
        header = self.request.headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Refused(UNAUTHENTICATED, "Authorization must be 'Bearer <access token>'")
            await self._accept_token(token.strip())
            return
        cookie = self.request.cookies.get(SESSION_COOKIE)
        if cookie:
            if not self._origin_allowed():
                raise Refused(FORBIDDEN, "cookie authentication from a foreign origin is refused")
            await self._accept_token(cookie)

    def _origin_allowed(self) -> bool:
        origin = self.request.headers.get("Origin")
        if origin is None:
            return False
        if origin in self.settings.cors_origins:
            return True
        return urlsplit(origin).netloc.lower() == self.request.host.lower()

    async def _accept_token(self, token: str) -> None:
        """Authenticate an access token; arm the expiry close (renewed by `auth` frames)."""
        try:
            principal = await accounts.authenticate(self.core, token)
            claims = self.core.tokens.decode_access(token)
        except RhythmError:
            raise Refused(UNAUTHENTICATED, "invalid or expired token") from None
        if self.user_id is not None and principal.user_id != self.user_id:
            raise Refused(UNAUTHENTICATED, "a renewed token must belong to the same user")
        self.user_id = principal.user_id
        if self._expiry is not None:
            self._expiry.cancel()
        loop = asyncio.get_running_loop()
        delay = max(0.0, claims.expires_at - time.time())
        self._expiry = loop.call_later(delay, self._expired)

    def _expired(self) -> None:
        if self.conn is not None:
            self.conn.close(UNAUTHENTICATED, "token expired", flush=False)

    async def _await_auth_frame(self) -> None:
        try:
            msg = await self.ws.receive(timeout=self.settings.ws_auth_timeout)
        except TimeoutError:
            raise Refused(UNAUTHENTICATED, "authenticate within the time limit") from None
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            raise Refused(UNAUTHENTICATED, "closed before authenticating")
        data = _decode(msg)
        if not isinstance(data, dict) or data.get("type") != "auth":
            raise Refused(UNAUTHENTICATED, "the first frame must be an auth frame")
        token = data.get("token")
        if not isinstance(token, str) or not token:
            raise Refused(UNAUTHENTICATED, "auth frame needs a token")
        await self._accept_token(token)

    async def _org(self) -> OrgAccess:
        """The org in the URL, if the person is a member (4404 otherwise, no difference)."""
        try:
            return await authorize_org(
                self.core, SOCKET_PERMISSION, self.user_id, self.request.match_info["org"]
            )
        except RhythmError:
            raise Refused(NOT_FOUND, "organization not found") from None

    # -- client frames ---------------------------------------------------------------

    async def _read(self, conn: Connection) -> None:
        async for msg in self.ws:
            if conn.close_reason is not None or msg.type is WSMsgType.ERROR:
                return  # closing, or aiohttp closed it (1009: frame too large)
            if not self.bucket.take():
                conn.send(error("rate_limited", "too many frames"))
                conn.close(RATE_LIMITED, "too many frames", flush=True)
                return
            if msg.type is not WSMsgType.TEXT:
                conn.send(error("bad_frame", "frames are JSON text"))
                continue
            data = _decode(msg)
            if not isinstance(data, dict):
                conn.send(error("bad_frame", "a frame is a JSON object"))
                continue
            try:
                await self._handle(conn, data)
            except Refused as refused:
                conn.close(refused.code, refused.reason, flush=True)
                return

    async def _handle(self, conn: Connection, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "subscribe":
            project, since = data.get("project"), data.get("since")
            if not _label_ok(project) or not _since_ok(since):
                conn.send(error("bad_frame", "subscribe needs project (key or '*') and since >= 0"))
                return
            self.hub.subscribe(conn, project, since)
        elif kind == "unsubscribe":
            project = data.get("project")
            if not _label_ok(project):
                conn.send(error("bad_frame", "unsubscribe needs project"))
                return
            self.hub.unsubscribe(conn, project)
        elif kind == "ping":
            ping_id = data.get("id")
            if not isinstance(ping_id, int | str | None) or len(str(ping_id)) > 64:
                conn.send(error("bad_frame", "ping id is a number or a short string"))
                return
            conn.send(frame({"type": "pong", "id": ping_id}))
        elif kind == "auth":
            token = data.get("token")
            if not isinstance(token, str) or not token:
                conn.send(error("bad_frame", "auth frame needs a token"))
                return
            await self._accept_token(token)
            conn.send(frame({"type": "authenticated"}))
        else:
            conn.send(error("bad_frame", "unknown frame type"))


def _decode(msg: Any) -> Any:
    if msg.type is not WSMsgType.TEXT:
        return None
    try:
        return json.loads(msg.data)
    except ValueError:
        return None


def _label_ok(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and (value == "*" or 1 <= len(value) <= 10)


def _since_ok(value: Any) -> bool:
    return value is None or (type(value) is int and 0 <= value < 2**63)


SOCKET_ROUTES: tuple[SocketRoute, ...] = (
    SocketRoute(
        "/orgs/{org}/ws", socket_endpoint, SOCKET_PERMISSION,
        "Real-time events of the org's projects (SPEC §7)",
    ),
)  # fmt: skip


def install(app: web.Application) -> None:
    """Register the socket routes, and close every socket with 1001 as shutdown begins
    (aiohttp waits for running handlers after `on_shutdown`, so sockets end first)."""
    for route in SOCKET_ROUTES:
        app.router.add_route("GET", route.full_path, route.handler)

    async def on_shutdown(app: web.Application) -> None:
        hub = hub_of(app) if CORE in app else None
        if hub is not None:
            await hub.shutdown()

    app.on_shutdown.append(on_shutdown)
