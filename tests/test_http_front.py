"""The front middleware (tracker/http/front.py): one layer doing, in order, timing,
request id, the error boundary, CORS and the rate limit; each step checked here on the
real app, including how the steps see each other (a 429 carries CORS and the id)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from tests.conftest import make_settings
from tests.test_http_metrics import scrape, value
from tracker.http.app import create_app

ORIGIN = "https://app.example.com"
HEALTH = "/api/v1/health/live"


async def boom(request: web.Request) -> web.Response:
    raise ValueError("a bug")


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/api/v1/health/live")


async def front_client(tmp_path: Path, aiohttp_client: Any, **overrides: Any) -> Any:
    app = create_app(make_settings(tmp_path / "d", cors_origins=(ORIGIN,), **overrides))
    app.router.add_get("/test/boom", boom)
    app.router.add_get("/test/moved", moved)
    return await aiohttp_client(app)


def test_the_front_wraps_every_handler_and_the_app_has_no_aiohttp_middleware(
    tmp_path: Path,
) -> None:
    """Why: without aiohttp middlewares aiohttp skips its chain builder and its own
    `current_app` layer on every request (docs/read-path.md "Third pass")."""
    app = create_app(make_settings(tmp_path / "d"))
    app.freeze()
    assert not app.middlewares
    for route in app.router.routes():
        assert route.handler.func.__name__ == "front_middleware", route  # type: ignore[attr-defined]


async def test_cors_preflight_and_headers_for_allowed_origins_only(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await front_client(tmp_path, aiohttp_client)
    preflight = await client.options(HEALTH, headers={"Origin": ORIGIN})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "If-Match" in preflight.headers["Access-Control-Allow-Headers"]
    assert preflight.headers["X-Request-Id"]
    answer = await client.get(HEALTH, headers={"Origin": ORIGIN})
    assert answer.status == 200
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert answer.headers["Vary"] == "Origin"
    assert "X-Request-Id" in answer.headers["Access-Control-Expose-Headers"]
    stranger = await client.get(HEALTH, headers={"Origin": "https://evil.example"})
    assert stranger.status == 200 and "Access-Control-Allow-Origin" not in stranger.headers
    refused = await client.options(HEALTH, headers={"Origin": "https://evil.example"})
    assert refused.status == 405  # no preflight for strangers: the route has no OPTIONS


async def test_a_429_carries_cors_headers_and_the_request_id(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await front_client(tmp_path, aiohttp_client, rate_limit_rps=0.1,
                                rate_limit_burst=1)  # fmt: skip
    first = await client.get("/api/v1/users/me", headers={"Origin": ORIGIN})
    assert first.status == 401 and "RateLimit" not in first.headers  # an error raised below
    second = await client.get("/api/v1/users/me", headers={"Origin": ORIGIN})
    assert second.status == 429
    assert second.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert second.headers["RateLimit"] == '"default";r=0;t=10'
    assert (await second.json())["request_id"] == second.headers["X-Request-Id"]
    health = await client.get(HEALTH)  # exempt: no bucket, no fields
    assert health.status == 200 and "RateLimit" not in health.headers


async def test_bugs_redirects_and_health_are_counted_with_their_final_status(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    client = await front_client(tmp_path, aiohttp_client)
    before = await scrape(client)
    bug = await client.get("/test/boom", headers={"X-Request-Id": "abc-123"})
    assert bug.status == 500 and bug.headers["Content-Type"] == "application/problem+json"
    assert bug.headers["X-Request-Id"] == "abc-123"
    assert (await bug.json())["request_id"] == "abc-123"
    redirect = await client.get("/test/moved", allow_redirects=False)
    assert redirect.status == 302
    health = await client.get(HEALTH, headers={"X-Request-Id": "bad id with spaces"})
    assert health.status == 200
    assert health.headers["X-Request-Id"] and health.headers["X-Request-Id"] != "bad id with spaces"
    after = await scrape(client)
    for route, status in (("/test/boom", "500"), ("/test/moved", "302"), (HEALTH, "200")):
        labels = {"method": "GET", "route": route, "status": status}
        counted = value(after, "rhythm_http_requests_total", **labels)
        assert counted - value(before, "rhythm_http_requests_total", **labels) == 1, route
