"""The segment-tree router picks exactly what aiohttp's own dispatcher picks.

Generated from the app's route table (and every other resource the app
registers: UI pages, static assets, docs, the WebSocket door): each path with
sample values, its trailing-slash, upper- and lower-case variants and extra or
missing segments, under every method, is resolved twice — by `ShapeRouter` and
by `UrlDispatcher.resolve` on the same frozen router — and both answers must
match: same handler, same match values, or the same 404 / 405 with the same
allowed methods. The same runs for the app mounted as a plugin sub-app.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request
from aiohttp.web_urldispatcher import MatchInfoError, UrlDispatcher

from tests.conftest import make_settings
from tracker.http.app import create_app
from tracker.http.binding import ROUTE_TABLE
from tracker.http.router import ShapeRouter

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
SAMPLES = {"org": "acme", "project": "WEB", "n": "12", "key": "WEB-12"}
VAR = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def sample(canonical: str) -> str:
    return VAR.sub(lambda m: SAMPLES.get(m.group(1), f"x-{m.group(1)}"), canonical)


def variants(path: str) -> Iterator[str]:
    yield path
    yield path + "/"
    yield path.upper()
    yield path.lower()
    yield path.rstrip("/").rsplit("/", 1)[0] or "/"
    yield path.rstrip("/") + "/extra"
    yield path.replace("/api/v1/", "/API/V1/")
    yield path + "//"
    yield path.replace("/", "//", 2)
    yield path + "%2Fx"


def answer(info: Any) -> tuple[Any, ...]:
    """What a resolution decides: handler + values, or status + allowed methods."""
    if isinstance(info, MatchInfoError):
        exc = info.http_exception
        return ("error", exc.status, tuple(sorted(getattr(exc, "allowed_methods", ()))))
    return ("route", info.handler, dict(info), info.route.resource)


async def compare(app: web.Application, router: UrlDispatcher, paths: set[str]) -> int:
    assert isinstance(router, ShapeRouter)
    router.freeze()
    checked = 0
    for path in sorted(paths):
        for method in METHODS:
            request = make_mocked_request(method, path, app=app)
            fast = await router.resolve(request)
            slow = await UrlDispatcher.resolve(router, request)
            assert answer(fast) == answer(slow), (method, path)
            checked += 1
    return checked


def all_paths(app: web.Application, prefix: str = "") -> set[str]:
    paths: set[str] = {prefix + "/", prefix + "/nowhere", prefix + "/api/v1/nowhere", "/x"}
    canonicals = {prefix + route.full_path for route in app[ROUTE_TABLE].routes}
    canonicals |= {r.canonical for r in app.router.resources()}
    for canonical in canonicals:
        paths.update(variants(sample(canonical)))
    return paths


async def test_every_route_resolves_as_aiohttp_does(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    routes = app[ROUTE_TABLE].routes
    assert len(routes) > 100
    checked = await compare(app, app.router, all_paths(app))
    assert checked > len(routes) * len(METHODS) * 5


async def test_each_table_route_reaches_its_own_handler(tmp_path: Path) -> None:
    """Not only 'as aiohttp does': each declared route's sample path with its method
    lands on the endpoint bound for that very route (its operation name)."""
    app = create_app(make_settings(tmp_path))
    app.router.freeze()
    for route in app[ROUTE_TABLE].routes:
        request = make_mocked_request(route.method, sample(route.full_path), app=app)
        info = await app.router.resolve(request)
        assert not isinstance(info, MatchInfoError), route.name
        assert info.handler.__name__ == route.name, (route.name, info.handler.__name__)


async def test_mounted_as_a_plugin_the_same(tmp_path: Path) -> None:
    sub = create_app(make_settings(tmp_path), identity=_nobody)
    host = web.Application()
    host.add_subapp("/tracker/", sub)
    checked = await compare(sub, sub.router, all_paths(sub, "/tracker"))
    assert checked > 500


async def _nobody(request: web.Request) -> None:
    return None


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/api/v1/health/live/", 404, None),
        ("GET", "/API/V1/HEALTH/LIVE", 404, None),
        ("GET", "/api/v1/orgs/acme/projects/WEB/issues/1/nope", 404, None),
        ("PUT", "/api/v1/health/live", 405, "GET"),
        ("DELETE", "/api/v1/orgs", 405, "GET, POST"),
    ],
)
async def test_misses_answer_problems_over_http(
    client: TestClient, method: str, path: str, status: int, allow: str | None
) -> None:
    resp = await client.request(method, path)
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    assert resp.headers.get("Allow") == allow


async def test_path_cache_stays_bounded_and_answers_as_aiohttp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resolved paths are remembered (a hot path is one lookup), but a client sending
    endless distinct or long paths cannot grow the cache: it empties when full."""
    import tracker.http.router as router_module

    monkeypatch.setattr(router_module, "PATH_CACHE_SIZE", 8)
    app = create_app(make_settings(tmp_path))
    router = app.router
    paths = {f"/api/v1/orgs/org{n}/projects/WEB/issues/{n}" for n in range(30)}
    paths.add("/api/v1/orgs/acme/projects/" + "K" * 300)
    for _ in range(2):  # the second pass answers from the cache where it can
        assert await compare(app, router, paths) == len(paths) * len(METHODS)
        assert isinstance(router, ShapeRouter) and router._by_path is not None
        assert 0 < len(router._by_path) <= 8
        assert all(len(path) <= router_module.PATH_CACHE_MAX_LEN for path in router._by_path)
