"""Helpers for the UI tests: a browser-like session over the aiohttp test client."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientSession, CookieJar
from aiohttp.test_utils import TestClient

from tests.conftest import Api

_n = itertools.count(1)
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


@pytest.fixture
async def world(client: TestClient, api: Api) -> AsyncIterator[dict[str, Any]]:
    """An org with a project and issues, its owner, a viewer and a developer, each signed
    in to the UI."""
    owner = await api.user()
    viewer = await api.user()
    dev = await api.user()
    org = await api.org(owner, slug=f"acme{next(_n)}")
    await api.project(owner, org, key="WEB")
    for member in (viewer, dev):
        response = await client.post(
            f"/api/v1/orgs/{org['slug']}/members",
            json={"user_id": member["id"], "role": "member"},
            headers=owner["headers"],
        )
        assert response.status in (200, 201), await response.text()
    base = f"/api/v1/orgs/{org['slug']}/projects/WEB"
    for member, role in ((viewer, "viewer"), (dev, "developer")):
        response = await client.post(
            f"{base}/members", json={"user_id": member["id"], "role": role},
            headers=owner["headers"],
        )  # fmt: skip
        assert response.status in (200, 201), await response.text()
    for title in ("First card", "Second card"):
        response = await client.post(
            f"{base}/issues", json={"title": title}, headers=owner["headers"]
        )
        assert response.status == 201
    owner_ui, viewer_ui, dev_ui = [await session(client) for _ in range(3)]
    await sign_in(owner_ui, owner["email"])
    await sign_in(viewer_ui, viewer["email"])
    await sign_in(dev_ui, dev["email"])
    yield {
        "org": org,
        "owner": owner,
        "viewer": viewer,
        "owner_ui": owner_ui,
        "viewer_ui": viewer_ui,
        "dev": dev,
        "dev_ui": dev_ui,
        "board": f"/o/{org['slug']}/p/WEB",
        "api": base,
    }
    await owner_ui.close()
    await viewer_ui.close()
    await dev_ui.close()
