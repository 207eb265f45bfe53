"""Shared fixtures: a real data directory under tmp_path and a real aiohttp app.

argon2 runs for real, with the cheapest parameters the settings allow, so the
suite stays fast without faking the password hasher.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tracker.http.app import create_app
from tracker.settings import Settings

_emails = itertools.count(1)


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "argon2_time_cost": 1,
        "argon2_memory_kib": 8192,
        "log_level": "warning",
        # Tests register many users and orgs from 127.0.0.1; the abuse limits have
        # their own tests (test_http_abuse.py), which set them explicitly.
        "signups_per_address": 0,
        "max_orgs_per_user": 0,
        # Tests fire hundreds of requests per user per second; the rate limiter has its
        # own tests (test_http_ratelimit.py), which turn it on.
        "rate_limit_rps": 0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings) -> TestClient:
    return await aiohttp_client(create_app(settings))


class Api:
    """Small helpers over the test client: users, tokens, orgs, projects."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def user(
        self, email: str | None = None, password: str = "correct horse"
    ) -> dict[str, Any]:
        """Register and log in; returns {id, email, headers, tokens}."""
        email = email or f"user{next(_emails)}@example.com"
        response = await self.client.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        assert response.status == 201, await response.text()
        user = await response.json()
        response = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status == 200, await response.text()
        tokens = await response.json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        return {**user, "headers": headers, "tokens": tokens, "password": password}

    async def org(self, owner: dict[str, Any], slug: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": slug or f"Org {next(_emails)}"}
        if slug:
            body["slug"] = slug
        response = await self.client.post("/api/v1/orgs", json=body, headers=owner["headers"])
        assert response.status == 201, await response.text()
        return await response.json()

    async def project(
        self, owner: dict[str, Any], org: dict[str, Any], key: str = "WEB", **extra: Any
    ) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/v1/orgs/{org['slug']}/projects",
            json={"name": f"Project {key}", "key": key, **extra},
            headers=owner["headers"],
        )
        assert response.status == 201, await response.text()
        return await response.json()


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


Factory = Callable[..., Awaitable[Any]]


@pytest.fixture
async def core_factory(tmp_path: Path) -> AsyncIterator[Factory]:
    """Open real cores on temp data dirs (no HTTP); all closed at teardown."""
    from tracker.core import open_core

    async with contextlib.AsyncExitStack() as stack:
        opened = 0

        async def factory(*, background: bool = False, **overrides: Any) -> Any:
            nonlocal opened
            settings = make_settings(tmp_path / f"core{opened}", **overrides)
            opened += 1
            return await stack.enter_async_context(open_core(settings, background=background))

        yield factory
