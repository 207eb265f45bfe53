"""The signed webhook HTTP client and its SSRF guard.

Every decision is made on addresses, never on names (docs/WEBHOOKS.md):

- At creation and again at every send, `check_url` refuses anything but
  http/https, userinfo, over-long URLs, `localhost` names, and a host that is a
  forbidden address literal in any spelling Python or libc accept (`127.1`,
  `0x7f000001`, `2130706433`, `0177.0.0.1`, `[::ffff:127.0.0.1]`...).
- A host name is resolved when the connection is made, by `GuardedResolver`:
  every returned address is checked and one forbidden address refuses the whole
  answer. aiohttp connects to exactly the addresses the resolver returned (its
  DNS cache is off), so an answer that changes between check and connect (DNS
  rebinding) cannot slip through. aiohttp never calls the resolver for IP
  literals, which is why `check_url` runs again on every send.
- No redirects, no proxy from the environment, 10 s total timeout, at most
  `READ_LIMIT` bytes of a response are read.

`post()` never raises for the receiver's faults: the outcome says what happened.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import re
import socket
import time
from dataclasses import dataclass

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Longest URL accepted (a longer one is a 422 at creation).
MAX_URL_LENGTH = 2048
#: Bytes of a response read at most (the rest is dropped with the connection).
READ_LIMIT = 64 * 1024
#: Bytes of a response kept for the delivery log.
KEEP_LIMIT = 4096

_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$", re.IGNORECASE)
_V6_FORBIDDEN = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "::/96",  # IPv4-compatible (deprecated), also :: and ::1
        "64:ff9b::/96",  # NAT64 well-known prefix
        "64:ff9b:1::/48",  # NAT64 local-use prefix
        "2002::/16",  # 6to4: embeds an IPv4 address
        "2001::/32",  # Teredo: embeds an IPv4 address
    )
)
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


class Refused(Exception):
    """A URL or address Rhythm will not contact; `code` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BlockedAddress(OSError):
    """Raised by the resolver; an OSError so aiohttp reports it as a connect failure."""


def forbidden(address: IPAddress) -> bool:
    """True for anything but global unicast (mapped, compat, NAT64, 6to4, Teredo forms too)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return forbidden(address.ipv4_mapped)
        if any(address in net for net in _V6_FORBIDDEN):
            return True
    elif address in _CGNAT:
        return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_reserved
        or address.is_unspecified
    )


def literal_address(host: str) -> IPAddress | None:
    """The address a host literal stands for, in any spelling the resolver accepts."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_HOST.match(text):  # 127.1, 0x7f000001, 2130706433, 0177.0.0.1 (inet_aton forms)
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def check_url(url: str, *, allow_private: bool) -> URL:
    """The parsed URL, or Refused (`bad_url` or `blocked_address`)."""
    return _checked(url, allow_private)


@functools.lru_cache(maxsize=4096)
def _checked(url: str, allow_private: bool) -> URL:
    """check_url's work: a pure function of the string (no DNS), so the sender's check
    before every POST of a hook is a cache hit; a Refused is not cached (re-raised)."""
    if len(url) > MAX_URL_LENGTH:
        raise Refused("bad_url", f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        raise Refused("bad_url", "the URL cannot be parsed") from None
    if parsed.scheme not in ("http", "https"):
        raise Refused("bad_url", "only http and https URLs are allowed")
    if parsed.user is not None or parsed.password is not None:
        raise Refused("bad_url", "credentials in the URL are not allowed")
    host = parsed.raw_host or ""
    if not host or len(host) > 253:
        raise Refused("bad_url", "the URL needs a host name of at most 253 characters")
    if allow_private:
        return parsed
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        raise Refused("blocked_address", "the host is a loopback name")
    address = literal_address(host)
    if address is not None and forbidden(address):
        raise Refused("blocked_address", f"{address} is not a public address")
    return parsed


class GuardedResolver(AbstractResolver):
    """Resolve at connect time and refuse the answer if any address is forbidden."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        for answer in answers:
            address = ipaddress.ip_address(answer["host"].split("%", 1)[0])
            if forbidden(address):
                raise BlockedAddress(f"{host} resolves to {address}, which is not public")
        return answers

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class Outcome:
    """What one POST did: a status and the head of the body, or an error code."""

    status: int | None
    body: bytes
    duration_ms: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status is not None and 200 <= self.status < 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>` (SPEC §8)."""
    mac = _keyed(secret).copy()
    mac.update(b"%d." % timestamp)
    mac.update(body)
    return "sha256=" + mac.hexdigest()


@functools.lru_cache(maxsize=1024)
def _keyed(secret: str) -> hmac.HMAC:
    """The HMAC state after the key (copied per message: the key schedule is paid once)."""
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def signed_headers(
    secret: str, event: str, delivery_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The headers of one attempt (a new timestamp and signature each time)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "User-Agent": "Rhythm-Webhooks/1",
        "X-Rhythm-Event": event,
        "X-Rhythm-Delivery": delivery_id,
        "X-Rhythm-Timestamp": str(stamp),
        "X-Rhythm-Signature": sign(secret, stamp, body),
    }


def headers_json(headers: dict[str, str]) -> str:
    """The headers as the JSON object the delivery log stores. Rhythm's own headers are
    plain ASCII without quotes or backslashes (event names, UUIDs, digits, hex), so they
    are spliced into a template, a third of `json.dumps`'s cost once per attempt;
    anything else goes through `json.dumps`."""
    values = tuple(headers.values())
    if tuple(headers) == _KEYS and _plain("".join(values)):
        return _TEMPLATE.format(*values)
    return json.dumps(headers, separators=(",", ":"))


_KEYS = ("Content-Type", "User-Agent", "X-Rhythm-Event", "X-Rhythm-Delivery",
         "X-Rhythm-Timestamp", "X-Rhythm-Signature")  # fmt: skip


_TEMPLATE = "{{" + ",".join(f'"{key}":"{{}}"' for key in _KEYS) + "}}"


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


class Outbound:
    """One shared client session for every delivery; `close()` at shutdown."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float = 10.0,
        connections: int = 64,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allow_private = allow_private
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(3.0, timeout))
        self._connections = connections
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            inner = self._resolver or DefaultResolver()
            resolver = inner if self.allow_private else GuardedResolver(inner)
            connector = aiohttp.TCPConnector(
                resolver=resolver, use_dns_cache=False, limit=self._connections
            )
            # no proxy from the environment; receivers cannot plant cookies for later sends
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        """POST once; never follows a redirect, never raises for the receiver's faults."""
        started = time.monotonic()

        def done(status: int | None, data: bytes = b"", error: str | None = None) -> Outcome:
            return Outcome(status, data, int((time.monotonic() - started) * 1000), error)

        try:
            target = check_url(url, allow_private=self.allow_private)
        except Refused as exc:
            return done(None, error=exc.code)
        try:
            async with self._open().post(
                target, data=body, headers=headers, allow_redirects=False
            ) as response:
                data = await _read_head(response)
                error = "redirect_not_followed" if 300 <= response.status < 400 else None
                return done(response.status, data, error)
        except aiohttp.ClientConnectorError as exc:
            blocked = isinstance(exc.os_error, BlockedAddress)
            return done(None, error="blocked_address" if blocked else "connection_failed")
        except TimeoutError:
            return done(None, error="timeout")
        except (aiohttp.ClientError, OSError, ValueError):
            return done(None, error="connection_failed")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_head(response: aiohttp.ClientResponse) -> bytes:
    """Keep the first KEEP_LIMIT bytes; read at most READ_LIMIT, then drop the connection."""
    data = bytearray()
    while len(data) < READ_LIMIT:
        chunk = await response.content.read(READ_LIMIT - len(data))
        if not chunk:
            return bytes(data[:KEEP_LIMIT])
        data += chunk
    response.close()  # more was coming: do not read a 100 MB answer
    return bytes(data[:KEEP_LIMIT])
