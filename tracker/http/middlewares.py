"""Middlewares. Order (outermost first) is one list in app.py; each one is cheap.

`problems` is the only error boundary: it assigns the request id, turns every
RhythmError and aiohttp HTTPException into problem+json, logs anything else as
a bug and answers a 500 problem without a traceback. It is one middleware, not
three, because the health route must keep >= 70% of plain aiohttp's speed.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from multidict import istr

from tracker.errors import RhythmError, ServiceUnavailable
from tracker.http.keys import LIFECYCLE
from tracker.http.problems import from_http_exception, problem_response

log = logging.getLogger("tracker.http")

REQUEST_ID_HEADER = istr("X-Request-Id")  # an istr: the header map does not re-fold it
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
REQUEST_ID = web.RequestKey("request_id", str)
#: Fresh request ids: a random per-process prefix and a counter. Unique and cheap
#: (uuid4 reads the kernel's entropy pool on every request); they are not secrets.
_ID_PREFIX = secrets.token_hex(6)
_ID_COUNTER = itertools.count(1)


def request_id_of(request: web.Request) -> str:
    """The client's X-Request-Id when it is sane, else a fresh one."""
    sent = request.headers.get(REQUEST_ID_HEADER)
    if sent is not None and _SAFE_REQUEST_ID.match(sent):
        return sent
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request_id_of(request)
    request[REQUEST_ID] = request_id
    lifecycle = request.app[LIFECYCLE]
    response: web.StreamResponse
    if lifecycle.draining:  # shutting down: refuse before anything is applied
        response = problem_response(ServiceUnavailable("the server is shutting down"), request_id)
        response.force_close()
        response.headers[REQUEST_ID_HEADER] = request_id
        return response
    try:
        response = await handler(request)
    except RhythmError as error:
        response = problem_response(error, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = problem_response(from_http_exception(exc), request_id)
    except Exception:
        log.exception("unhandled error in %s %s [%s]", request.method, request.path, request_id)
        response = problem_response(RhythmError("an unexpected error occurred"), request_id)
    response.headers[REQUEST_ID_HEADER] = request_id
    if lifecycle.draining:  # finished during the drain: the client must not reuse the socket
        response.force_close()
    return response


def cors(origins: tuple[str, ...]) -> Middleware:
    """Allow-listed CORS; only installed when origins are configured."""
    allowed = frozenset(origins)

    @web.middleware
    async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and origin in allowed:
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        if origin in allowed:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, If-Match, X-Request-Id"
            )
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
            response.headers["Access-Control-Expose-Headers"] = (
                "ETag, X-Request-Id, Retry-After, RateLimit, RateLimit-Policy"
            )
        return response

    return cors_middleware
