"""Who is calling: the client's address (trusted proxies only) and the user, cheaply.

Used by the rate limiter, the /metrics access rule and the request logs, before
the route's own authentication runs. `X-Forwarded-For` is believed only when the
peer is one of RHYTHM_TRUSTED_PROXIES (default: none, so the header is ignored);
then the client is the rightmost address in it that is not a trusted proxy itself.
"""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

from tracker.errors import RhythmError
from tracker.http.keys import CORE
from tracker.ui.session import ACCESS_COOKIE

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddresses:
    """Resolves a request's client address under one trusted-proxy list."""

    def __init__(self, trusted: tuple[str, ...]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in trusted
        )
        # addresses repeat (the same proxies, the same clients): parse each once
        self.is_trusted = functools.lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def of(self, request: web.BaseRequest) -> str:
        """The client's address: the peer, or with a trusted peer the forwarded client."""
        peer = request.remote or ""
        if not self.networks or not self.is_trusted(peer):
            return peer
        forwarded = request.headers.get("X-Forwarded-For")
        if not forwarded:
            return peer
        client = peer
        for hop in reversed(forwarded.split(",")):
            hop = hop.strip()
            if not is_address(hop):
                break  # garbage: the last trusted hop is all we know
            client = hop
            if not self.is_trusted(hop):
                break
        return client


ADDRESSES = web.AppKey("client_addresses", ClientAddresses)


@functools.lru_cache(maxsize=4096)
def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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
