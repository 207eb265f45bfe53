"""The client's address, decided once for every door: the rate limiter, /metrics, the logs
and the login/signup throttles of the API and the web UI (docs/operations.md).

`X-Forwarded-For` is believed only when the peer is one of RHYTHM_TRUSTED_PROXIES
(default: none, so the header is ignored); then the client is the rightmost
address in it that is not a trusted proxy itself. The HTTP app stores one
`ClientAddresses` under `ADDRESSES`; `client_address(request)` reads it.
"""

from __future__ import annotations

import functools
import ipaddress

from aiohttp import web

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


def client_address(request: web.Request) -> str:
    """The address a throttle keys on: the same decision as the rate limiter's."""
    addresses = request.config_dict.get(ADDRESSES)
    address = addresses.of(request) if addresses is not None else request.remote
    return address or "unknown"
