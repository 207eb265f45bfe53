"""The SSRF guard and the signed client (tracker/outbound/webhooks.py).

No real packet may leave for a private or public address: forbidden literals
are refused before a session even exists, and name resolution goes through a
stub resolver; loopback targets are checked with a listener that counts
connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from tests.webhook_receiver import Receiver, verify
from tracker.outbound.webhooks import (
    Outbound,
    Refused,
    check_url,
    forbidden,
    headers_json,
    sign,
    signed_headers,
)

FORBIDDEN_HOSTS = [
    "127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0", "0.0.0.0",
    "localhost", "LOCALHOST.", "api.localhost", "[::1]", "[::]", "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]", "169.254.169.254", "10.0.0.1", "172.16.0.1", "192.168.0.1",
    "100.64.0.1", "[fd00::1]", "[fe80::1]", "[::127.0.0.1]", "[64:ff9b::7f00:1]",
    "[2002:7f00:1::1]", "[2001::1]", "224.0.0.1", "[ff02::1]", "255.255.255.255",
    "198.18.0.1", "240.0.0.1",
]  # fmt: skip
ALLOWED_HOSTS = ["8.8.8.8", "[2606:4700:4700::1111]", "example.com", "hooks.example.org"]


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_every_forbidden_form_is_refused_at_creation(host: str) -> None:
    with pytest.raises(Refused) as caught:
        check_url(f"http://{host}:8080/hook", allow_private=False)
    assert caught.value.code == "blocked_address"
    check_url(f"http://{host}:8080/hook", allow_private=True)  # the setting opens them all


@pytest.mark.parametrize("host", ALLOWED_HOSTS)
def test_public_hosts_pass(host: str) -> None:
    assert check_url(f"https://{host}/hook", allow_private=False).scheme == "https"


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/", "gopher://example.com/", "example.com/x",
     "http://user:pass@example.com/", "http:///nohost", "https://example.com/" + "a" * 3000,
     "javascript:alert(1)", "http://" + "a" * 260 + ".com/"],
)  # fmt: skip
def test_url_hygiene(url: str) -> None:
    with pytest.raises(Refused) as caught:
        check_url(url, allow_private=True)
    assert caught.value.code == "bad_url"


def test_mapped_and_encoded_ipv6_unwrap_to_the_ipv4_rule() -> None:
    assert forbidden(ipaddress.ip_address("::ffff:10.1.2.3"))
    assert not forbidden(ipaddress.ip_address("::ffff:8.8.8.8"))
    assert forbidden(ipaddress.ip_address("64:ff9b::808:808"))  # NAT64 of a public address
    assert not forbidden(ipaddress.ip_address("2606:4700::1111"))


class StubResolver(AbstractResolver):
    """Answers from a table; counts calls (a rebinding DNS in one object)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        queue = self.answers[host]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        return [
            ResolveResult(hostname=host, host=a, port=port, family=socket.AF_INET, proto=0,
                          flags=socket.AI_NUMERICHOST)
            for a in addresses
        ]  # fmt: skip

    async def close(self) -> None:
        pass


@pytest.fixture
async def listener() -> AsyncIterator[dict[str, Any]]:
    """A loopback TCP listener that only counts connections."""
    seen = {"connections": 0}

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    seen["port"] = server.sockets[0].getsockname()[1]
    yield seen
    server.close()
    await server.wait_closed()


async def test_forbidden_literals_never_open_a_socket(listener: dict[str, Any]) -> None:
    outbound = Outbound(allow_private=False)
    port = listener["port"]
    for host in ("127.0.0.1", "127.1", "0x7f000001", "2130706433", "[::ffff:127.0.0.1]",
                 "localhost", "10.0.0.1", "169.254.169.254", "[fd00::1]"):  # fmt: skip
        outcome = await outbound.post(f"http://{host}:{port}/h", b"{}", {})
        assert outcome.error == "blocked_address", host
    assert listener["connections"] == 0
    assert outbound._session is None  # no client session, so no connection, ever existed
    await outbound.close()


async def test_a_name_resolving_to_loopback_is_refused_at_connect(
    listener: dict[str, Any],
) -> None:
    # Creation accepted the name (names are not resolved then); DNS answers public-looking
    # data first and loopback at send time — the send checks what it connects to.
    resolver = StubResolver({"rebind.test": [["127.0.0.1"]],
                             "mixed.test": [["93.184.216.34", "127.0.0.1"]]})  # fmt: skip
    port = listener["port"]
    check_url(f"http://rebind.test:{port}/h", allow_private=False)
    outbound = Outbound(allow_private=False, resolver=resolver)
    try:
        for host in ("rebind.test", "mixed.test"):
            outcome = await outbound.post(f"http://{host}:{port}/h", b"{}", {})
            assert outcome.error == "blocked_address", (host, outcome)
    finally:
        await outbound.close()
    assert resolver.calls == ["rebind.test", "mixed.test"]  # resolved at connect, every time
    assert listener["connections"] == 0


async def test_the_connection_goes_to_the_checked_address() -> None:
    receiver = await Receiver().start()
    resolver = StubResolver({"receiver.test": [["127.0.0.1"]]})
    outbound = Outbound(allow_private=True, resolver=resolver)
    try:
        outcome = await outbound.post(f"http://receiver.test:{receiver.port}/h", b"{}", {})
    finally:
        await outbound.close()
        await receiver.stop()
    assert outcome.ok and outcome.status == 200
    assert receiver.received[0].headers["Host"] == f"receiver.test:{receiver.port}"


def test_signature_is_hmac_over_timestamp_dot_body() -> None:
    body = b'{"event":"issue.created"}'
    headers = signed_headers("s3cret-s3cret-s3cret", "issue.created", "d-1", body, 1700000000)
    assert headers["X-Rhythm-Signature"] == sign("s3cret-s3cret-s3cret", 1700000000, body)
    assert verify("s3cret-s3cret-s3cret", headers, body)
    assert not verify("s3cret-s3cret-s3cret", headers, body + b" ")
    assert not verify("s3cret-s3cret-s3cret", {**headers, "X-Rhythm-Timestamp": "1700000001"},
                      body)  # fmt: skip
    import hashlib
    import hmac

    expected = hmac.new(b"s3cret-s3cret-s3cret", b"1700000000." + body, hashlib.sha256)
    assert headers["X-Rhythm-Signature"] == "sha256=" + expected.hexdigest()


def test_logged_headers_are_the_json_of_the_headers_sent() -> None:
    headers = signed_headers("s3cret-s3cret-s3cret", "issue.created", "d-1", b"{}", 1700000000)
    assert json.loads(headers_json(headers)) == headers
    odd = {**headers, "X-Rhythm-Event": 'a"b\\c\u00e9\n'}  # the template's fallback
    assert json.loads(headers_json(odd)) == odd
    rest = {k: v for k, v in headers.items() if k != "X-Rhythm-Event"}
    reordered = {"X-Rhythm-Event": "x", **rest}
    assert list(json.loads(headers_json(reordered))) == list(reordered)
