"""Core cases: the health probe and a one-row authenticated write."""

from __future__ import annotations

from bench.api import Api, register_and_login
from bench.cases import Request, case

JSON = {"Content-Type": "application/json"}


@case("health", baseline="json_ok", request=Request("GET", "/"), goal=0.70)
async def health(api: Api) -> Request:
    """plain aiohttp {"status":"ok"} vs GET /api/v1/health/live"""
    return Request("GET", "/api/v1/health/live")


@case(
    "write",
    baseline="sqlite_update",
    request=Request("PATCH", "/", JSON, b'{"display_name": "Bench {seq}"}'),
    goal=0.50,
)
async def write(api: Api) -> Request:
    """aiosqlite one-row UPDATE (WAL, BEGIN IMMEDIATE) vs PATCH /api/v1/users/me"""
    token = await register_and_login(api)
    headers = {**JSON, "Authorization": f"Bearer {token}"}
    return Request("PATCH", "/api/v1/users/me", headers, b'{"display_name": "Bench {seq}"}')
