"""A small JSON client used by case setup coroutines (not by the load drivers)."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

PASSWORD = "bench-Passw0rd-long-enough!"


class SetupError(RuntimeError):
    """A setup call got an unexpected status."""


class Api:
    """JSON calls against one server, raising with the body on a wrong status."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self.session = session
        self.base_url = base_url

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        token: str | None = None,
        expect: int = 200,
    ) -> Any:
        """Send one request; return the decoded JSON body (or None when empty)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = self.base_url + path
        async with self.session.request(method, url, json=json, headers=headers) as resp:
            text = await resp.text()
            if resp.status != expect:
                raise SetupError(f"{method} {path}: {resp.status} (want {expect}): {text[:300]}")
            return await resp.json(content_type=None) if text else None


async def register_and_login(api: Api, display_name: str = "Bench User") -> str:
    """Register a fresh user and return its access token."""
    email = f"bench-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD, "display_name": display_name}
    await api.call("POST", "/api/v1/auth/register", json=body, expect=201)
    login = {"email": email, "password": PASSWORD}
    tokens = await api.call("POST", "/api/v1/auth/login", json=login)
    return str(tokens["access_token"])
