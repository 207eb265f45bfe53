"""Login and sign-up throttles behind a proxy: both doors (API and web UI) key on the
client address the rate limiter decides (RHYTHM_TRUSTED_PROXIES), never on the bare peer
when a trusted proxy forwards, and never on a forwarded header nobody vouches for."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import make_settings
from tests.ui_world import csrf, session
from tracker.http.app import create_app

ALICE, BOB = "198.51.100.7", "203.0.113.9"  # two clients behind one proxy (the test peer)
_n = itertools.count(1)

Attempt = Callable[[TestClient, str], Awaitable[int]]


def _fresh_email() -> str:
    return f"proxied{next(_n)}@example.com"


async def api_login(client: TestClient, forwarded: str) -> int:
    body = {"email": _fresh_email(), "password": "wrong password"}
    headers = {"X-Forwarded-For": forwarded}
    response = await client.post("/api/v1/auth/login", json=body, headers=headers)
    return response.status


async def api_signup(client: TestClient, forwarded: str) -> int:
    body = {"email": _fresh_email(), "password": "correct horse"}
    headers = {"X-Forwarded-For": forwarded}
    response = await client.post("/api/v1/auth/register", json=body, headers=headers)
    return response.status


async def _ui_form(client: TestClient, path: str, forwarded: str, data: dict[str, str]) -> int:
    http = await session(client)
    try:
        token = await csrf(http, path)
        response = await http.post(
            path,
            data={"csrf_token": token, **data},
            headers={"X-Forwarded-For": forwarded},
            allow_redirects=False,
        )
        return response.status
    finally:
        await http.close()


async def ui_login(client: TestClient, forwarded: str) -> int:
    data = {"email": _fresh_email(), "password": "wrong password"}
    return await _ui_form(client, "/login", forwarded, data)


async def ui_signup(client: TestClient, forwarded: str) -> int:
    data = {"email": _fresh_email(), "password": "correct horse"}
    return await _ui_form(client, "/signup", forwarded, data)


DOORS: dict[str, tuple[Attempt, dict[str, Any], int]] = {
    # door: (one attempt, the limit setting, the status of an attempt under the limit)
    "api-login": (api_login, {"login_attempts_per_address": 2}, 401),
    "api-signup": (api_signup, {"signups_per_address": 2}, 201),
    "ui-login": (ui_login, {"login_attempts_per_address": 2}, 401),
    "ui-signup": (ui_signup, {"signups_per_address": 2}, 303),
}


@pytest.mark.parametrize("door", sorted(DOORS))
@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "no-proxy"])
async def test_each_forwarded_client_has_its_own_bucket_only_behind_a_trusted_proxy(
    aiohttp_client: Any, tmp_path: Path, door: str, trusted: bool
) -> None:
    attempt, limits, under = DOORS[door]
    proxies = ("127.0.0.1",) if trusted else ()
    settings = make_settings(tmp_path / "data", trusted_proxies=proxies, **limits)
    client = await aiohttp_client(create_app(settings))
    assert [await attempt(client, ALICE) for _ in range(2)] == [under, under]
    assert await attempt(client, ALICE) == 429  # Alice used her two
    if trusted:  # Bob is another client: his own bucket, untouched by Alice
        assert [await attempt(client, BOB) for _ in range(2)] == [under, under]
        assert await attempt(client, BOB) == 429
    else:  # the header is anybody's to write: both are the peer, whose bucket is spent
        assert await attempt(client, BOB) == 429
