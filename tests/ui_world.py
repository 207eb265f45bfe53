"""Helpers for the UI tests: a browser-like session over the aiohttp test client."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


async def session(client: TestClient) -> ClientSession:
    """A fresh cookie jar on the same server (a second browser)."""
    # unsafe=True: the test server is 127.0.0.1, whose cookies a default jar refuses
    return ClientSession(str(client.make_url("/")), cookie_jar=CookieJar(unsafe=True))


async def csrf(http: Any, path: str = "/login") -> str:
    response = await http.get(path)
    text = await response.text()
    found = CSRF_RE.search(text)
    assert found, text[:500]
    return found.group(1)


async def sign_up(http: Any, email: str, password: str = "correct horse") -> None:
    token = await csrf(http, "/signup")
    response = await http.post(
        "/signup",
        data={"csrf_token": token, "email": email, "password": password},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()


async def sign_in(http: Any, email: str, password: str = "correct horse") -> None:
    token = await csrf(http, "/login")
    response = await http.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": password},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()


async def post(http: Any, path: str, data: dict[str, Any], via: str = "/") -> Any:
    """A form POST with the session's CSRF token (read from a page, as a browser would)."""
    token = await csrf(http, via)
    return await http.post(path, data={"csrf_token": token, **data}, allow_redirects=False)
