"""The request id and CORS: the parts of the front middleware (front.py) other
modules need too (the server's protocol-error answers, the logs, the metrics page)."""

from __future__ import annotations

import itertools
import re
import secrets

from aiohttp import web
from multidict import istr

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


class Cors:
    """Allow-listed CORS, used by the front middleware only when origins are configured."""

    ALLOW_HEADERS = "Authorization, Content-Type, If-Match, X-Request-Id"
    ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
    EXPOSE_HEADERS = "ETag, X-Request-Id, Retry-After, RateLimit, RateLimit-Policy"

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.allowed = frozenset(origins)

    def origin(self, request: web.Request) -> str | None:
        """The request's Origin when it is allowed, else None."""
        origin = request.headers.get("Origin")
        return origin if origin in self.allowed else None

    def stamp(self, response: web.StreamResponse, origin: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Allow-Headers"] = self.ALLOW_HEADERS
        response.headers["Access-Control-Allow-Methods"] = self.ALLOW_METHODS
        response.headers["Access-Control-Expose-Headers"] = self.EXPOSE_HEADERS
