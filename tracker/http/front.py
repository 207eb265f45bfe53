"""The one layer in front of every handler: request id, timing, errors, CORS, limits.

What used to be three aiohttp middlewares (the metrics observer, the `problems` error
boundary, the rate limiter; CORS a fourth when configured) runs here as one call. It is
not registered as an aiohttp middleware: the router wraps every route's handler, and
every 404/405, in it (tracker/http/router.py), so the app has no aiohttp middleware and
aiohttp skips its middleware machinery altogether (each layer is a coroutine frame and a
`partial` per request, plus aiohttp's own `current_app` layer; docs/read-path.md "Third
pass"). Middlewares a test or a host appends still work; they run outside this one. The
order of the steps is the old order of the layers, outermost first, so every behaviour
is kept:

1. the clock starts (metrics and the slow-request log see every final status, 499 for
   a client that went away, the status of a redirect raised past the boundary);
2. the request id (the client's sane `X-Request-Id`, else a fresh one) is set on the
   request and on every response; while the server drains, 503 before anything runs;
3. the error boundary: every RhythmError and aiohttp HTTPException >= 400 becomes
   problem+json, anything else is logged as a bug and answered 500 without a traceback;
4. CORS (only when origins are configured): a preflight is answered here, the headers
   are added to every response the layers below return (not to errors converted above);
5. the rate limiter (only when configured): a 429 problem or the RateLimit fields.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from tracker.errors import RhythmError, ServiceUnavailable
from tracker.http.keys import Lifecycle
from tracker.http.metrics import Observer
from tracker.http.middlewares import REQUEST_ID, REQUEST_ID_HEADER, Cors, request_id_of
from tracker.http.problems import from_http_exception, problem_response
from tracker.http.ratelimit import Limiter

log = logging.getLogger("tracker.http")


def front(
    lifecycle: Lifecycle,
    observer: Observer | None = None,
    cors: Cors | None = None,
    limiter: Limiter | None = None,
) -> Middleware:
    """The front of one app (a middleware-shaped function: `(request, handler)`); the
    optional steps are None when not configured."""
    clock = time.perf_counter

    @web.middleware
    async def front_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = clock() if observer is not None else 0.0
        request_id = request_id_of(request)
        request[REQUEST_ID] = request_id
        response: web.StreamResponse
        try:
            if lifecycle.draining:  # shutting down: refuse before anything is applied
                response = problem_response(
                    ServiceUnavailable("the server is shutting down"), request_id
                )
                response.force_close()
            else:
                try:
                    origin = cors.origin(request) if cors is not None else None
                    if origin is not None and request.method == "OPTIONS":
                        response = web.Response(status=204)  # a preflight
                    else:
                        left = limiter.take(request) if limiter is not None else None
                        if left is not None and left < 0:
                            response = limiter.refusal(left, request_id)  # type: ignore[union-attr]
                            left = 0.0
                        else:
                            response = await handler(request)
                        if left is not None:
                            limiter.stamp(response, left)  # type: ignore[union-attr]
                    if origin is not None:
                        cors.stamp(response, origin)  # type: ignore[union-attr]
                except RhythmError as error:
                    response = problem_response(error, request_id)
                except web.HTTPException as exc:
                    if exc.status < 400:
                        raise
                    response = problem_response(from_http_exception(exc), request_id)
                except Exception:
                    log.exception(
                        "unhandled error in %s %s [%s]", request.method, request.path, request_id
                    )
                    response = problem_response(
                        RhythmError("an unexpected error occurred"), request_id
                    )
                if lifecycle.draining:  # finished during the drain: no reuse of the socket
                    response.force_close()
            response.headers[REQUEST_ID_HEADER] = request_id
        except web.HTTPException as exc:  # a redirect raised past the error boundary
            if observer is not None:
                observer.done(request, exc.status, clock() - started)
            raise
        except asyncio.CancelledError:  # the client went away: nginx's 499
            if observer is not None:
                observer.done(request, 499, clock() - started)
            raise
        if observer is not None:
            observer.done(request, response.status, clock() - started)
        return response

    return front_middleware
