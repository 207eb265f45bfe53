"""Who is calling: the client's address (trusted proxies only) and the user, cheaply.

Used by the rate limiter, the /metrics access rule and the request logs, before
the route's own authentication runs. The address rule itself (RHYTHM_TRUSTED_PROXIES,
`X-Forwarded-For`) lives in tracker/auth/addresses.py, below the web UI, so the
login and signup throttles of both doors key on the same address as the limiter.
"""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

from tracker.auth.addresses import ADDRESSES as ADDRESSES
from tracker.auth.addresses import ClientAddresses as ClientAddresses
from tracker.auth.addresses import client_address as client_address
from tracker.auth.addresses import is_address as is_address
from tracker.errors import RhythmError
from tracker.http.keys import CORE
from tracker.ui.session import ACCESS_COOKIE


@functools.lru_cache(maxsize=4096)
def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def bearer_of(request: web.BaseRequest) -> str | None:
    """The access token a request carries: a Bearer header, else the UI's session cookie."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        return token.strip() or None if scheme.lower() == "bearer" else None
    if "Cookie" in request.headers:
        return request.cookies.get(ACCESS_COOKIE) or None
    return None


def user_of(request: web.Request) -> str | None:
    """The user id of a request's valid access token (no database hop: the codec caches
    verified tokens), or None. Only for keying limits and logs; routes authenticate."""
    token = bearer_of(request)
    if token is None:
        return None
    core = request.app.get(CORE)
    if core is None:
        return None
    try:
        return core.tokens.decode_access(token).user_id
    except RhythmError:
        return None
