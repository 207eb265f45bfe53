"""The server `rhythm serve` runs: aiohttp's runner plus three guards aiohttp lacks.

1. **Shutdown drains keep-alive connections.** aiohttp's own shutdown stops
   reading from every connection at once, so a request a client sends on a
   kept-alive connection during shutdown is dropped and the connection reset.
   Here the listening socket closes first, then for up to `DRAIN_SECONDS` every
   request still arriving is answered 503 + `Connection: close` (nothing of it
   is applied: the handler never runs) and every response in flight carries
   `Connection: close`, so clients move on cleanly; only then does aiohttp's
   shutdown close what is left and wait for handlers still running.
2. **Header-read and idle bound.** aiohttp arms its keep-alive timer when a
   connection opens and does not re-arm it on partial data, so
   `keepalive_timeout` already bounds both the time to send a complete request
   head and the idle time between requests; the aiohttp default (75 s in
   run_app, an hour in the bare runner) is replaced by `RHYTHM_IDLE_TIMEOUT`.
3. **Protocol errors are problem details.** An over-long request line or header
   (aiohttp's 8,190-byte limits) or too many headers answer 414 / 431 as
   problem+json with one warning line (at most one per `WARN_EVERY` seconds,
   with a count of the ones not logged) instead of a text/plain 400 and an ERROR
   traceback per request.

Plugin mode runs inside the host's server, which keeps its own settings.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

from tracker.errors import BadRequest, RhythmError
from tracker.http.keys import LIFECYCLE, Lifecycle
from tracker.http.middlewares import request_id_of
from tracker.http.problems import HttpStatusError, problem_response
from tracker.settings import Settings

log = logging.getLogger("tracker.http")

DRAIN_SECONDS = 1.0
WARN_EVERY = 10.0
_REQUEST_LINE = re.compile(rb"^[A-Z]+ ")


class _RateLimitedWarning:
    """One warning line per `every` seconds; the ones in between are counted, not logged."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._next = 0.0
        self._skipped = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._skipped += 1
            return
        skipped, self._skipped = self._skipped, 0
        self._next = now + self.every
        suffix = f" ({skipped} more not logged)" if skipped else ""
        log.warning(message + suffix, *args)


warn_protocol_error = _RateLimitedWarning(WARN_EVERY)


def protocol_problem(exc: BaseException | None) -> RhythmError:
    """414 for an over-long request line, 431 for header trouble, else 400."""
    if isinstance(exc, LineTooLong):
        excerpt = exc.args[0] if exc.args else b""
        # The C parser hands the URL over as a bytearray; the pure-Python one the
        # whole request line. Header names and values arrive as bytes.
        if isinstance(excerpt, bytearray) or (
            isinstance(excerpt, bytes) and _REQUEST_LINE.match(excerpt)
        ):
            return HttpStatusError(414, "URI Too Long")
        return HttpStatusError(431, "Request Header Fields Too Large")
    if isinstance(exc, BadHttpMessage) and "header" in str(exc.message).lower():
        return HttpStatusError(431, "Request Header Fields Too Large")
    return BadRequest("malformed HTTP request")


class RhythmProtocol(web_protocol.RequestHandler):
    """aiohttp's connection handler with protocol errors rendered as problem details."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        problem = protocol_problem(exc)
        warn_protocol_error(
            "refused a malformed request from %s: %d %s", request.remote, problem.status,
            problem.title,
        )  # fmt: skip
        response = problem_response(problem, request_id_of(request))  # type: ignore[arg-type]
        response.force_close()
        return response


class _RhythmServer(web.Server):
    def __call__(self) -> web_protocol.RequestHandler:
        return RhythmProtocol(self, loop=self._loop, **self._kwargs)


class RhythmRunner(web.AppRunner):
    """AppRunner with the guards above; `drain_seconds` is how long shutdown drains."""

    def __init__(self, app: web.Application, *, drain_seconds: float = DRAIN_SECONDS,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(app, **kwargs)
        self.drain_seconds = drain_seconds

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _RhythmServer  # same state, our protocol factory
        return server

    async def cleanup(self) -> None:
        """Stop listening, drain keep-alive connections, then aiohttp's own shutdown."""
        for site in list(self.sites):
            await site.stop()
        lifecycle = self.app.get(LIFECYCLE)
        if self.server is not None and lifecycle is not None:
            lifecycle.draining = True
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.drain_seconds
            while self.server.connections and loop.time() < deadline:
                await asyncio.sleep(0.02)
        await super().cleanup()


async def serve(
    app: web.Application,
    settings: Settings,
    *,
    on_ready: Callable[[], None] = lambda: None,
    access_log_class: Any = None,
    shutdown_timeout: float = 30.0,
) -> None:
    """Serve until SIGINT/SIGTERM, then shut down gracefully (see the module docstring)."""
    kwargs: dict[str, Any] = {"keepalive_timeout": settings.idle_timeout}
    if access_log_class is not None:
        kwargs["access_log_class"] = access_log_class
    runner = RhythmRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout, **kwargs)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        on_ready()
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()


__all__ = ["Lifecycle", "RhythmRunner", "serve"]
