"""UI security: CSRF, inert user content, security headers on every HTML response."""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import Api
from tests.ui_world import csrf, post, session, sign_in

XSS = (
    "<script>alert(1)</script>\n\n"
    '<img src=x onerror="alert(2)">\n\n'
    '[click](javascript:alert(3)) and <a href="javascript:alert(4)">raw</a>\n\n'
    "![pic](javascript:alert(5)) [ok](https://example.com)"
)


async def _signed_in_owner(client: TestClient, api: Api) -> tuple[Any, dict[str, Any], str]:
    owner = await api.user()
    org = await api.org(owner, slug="sec")
    await api.project(owner, org, key="WEB")
    response = await client.post(
        "/api/v1/orgs/sec/projects/WEB/issues",
        json={"title": "<b>bold title</b>", "description": XSS},
        headers=owner["headers"],
    )
    assert response.status == 201
    http = await session(client)
    await sign_in(http, owner["email"])
    return http, owner, "/o/sec/p/WEB/issues/1"


async def test_cross_site_post_without_the_csrf_token_is_refused(
    client: TestClient, api: Api
) -> None:
    http, owner, path = await _signed_in_owner(client, api)
    try:
        # the session cookies are sent (as a browser would) but the token is missing or wrong
        for data in ({"body": "forged"}, {"body": "forged", "csrf_token": "x" * 43}):
            response = await http.post(path + "/comments", data=data, allow_redirects=False)
            assert response.status == 403
        response = await http.post("/orgs", data={"name": "Forged"}, allow_redirects=False)
        assert response.status == 403
        # a right token from another origin is refused too
        token = await csrf(http, path)
        response = await http.post(
            path + "/comments",
            data={"body": "forged", "csrf_token": token},
            headers={"Origin": "https://evil.example"},
            allow_redirects=False,
        )
        assert response.status == 403
        listed = await client.get(
            "/api/v1/orgs/sec/projects/WEB/issues/1/comments", headers=owner["headers"]
        )
        assert (await listed.json())["items"] == []
        # the same request with the token (header, as htmx sends it) goes through
        response = await http.post(
            path + "/comments",
            data={"body": "real"},
            headers={"X-CSRF-Token": token},
            allow_redirects=False,
        )
        assert response.status == 303
        # the login form is protected as well (login CSRF)
        fresh = await session(client)
        response = await fresh.post("/login", data={"email": owner["email"], "password": "x"})
        assert response.status == 403
        await fresh.close()
    finally:
        await http.close()


async def test_user_content_renders_inert(client: TestClient, api: Api) -> None:
    http, _, path = await _signed_in_owner(client, api)
    try:
        response = await post(http, path + "/comments", {"body": XSS}, via=path)
        assert response.status == 303
        page = await (await http.get(path)).text()
        main = page[page.index("<main") :]
        assert "<script>alert" not in main and "<script" not in main
        # escaped text may mention them; no live tag or attribute may carry them
        assert not re.search(r"<img[^>]*onerror", main)
        assert not re.search(r"<[a-z][^>]*\son[a-z]+=", main)
        assert not re.search(r"<[a-z]+\s[^<>]*(href|src)\s*=\s*\"?\s*javascript:", main, re.I)
        assert 'href="https://example.com"' in main
        assert "&lt;b&gt;bold title&lt;/b&gt;" in main  # the title is escaped text
        # every script on the page is a vendored or own file, never inline
        assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    finally:
        await http.close()


async def test_security_headers_on_every_html_response(client: TestClient, api: Api) -> None:
    http, _, path = await _signed_in_owner(client, api)
    try:
        paths = ["/login", "/signup", "/", "/o/sec", "/o/sec/p/WEB", path,
                 "/o/sec/p/WEB/issues/new", "/o/sec/search?q=bold", "/o/nope",
                 "/o/sec/search?q=status:"]  # fmt: skip
        for target in paths:
            response = await http.get(target)
            assert "text/html" in response.headers["Content-Type"], target
            csp = response.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, target
            assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Referrer-Policy"] == "same-origin"
        anonymous = await client.get("/login")
        assert "Content-Security-Policy" in anonymous.headers
        docs = await client.get("/api/v1/docs")
        assert (
            docs.status == 200
            and "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]
        )
    finally:
        await http.close()


async def test_static_files_are_versioned_and_cached(client: TestClient) -> None:
    page = await (await client.get("/login")).text()
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page)
    assert any("htmx-2.0.11" in u for u in urls) and any("sortable" in u for u in urls)
    for url in urls:
        response = await client.get(url)
        assert response.status == 200, url
        assert "immutable" in response.headers["Cache-Control"]
    stale = re.sub(r"/static/[0-9a-f]+/", "/static/000000000000/", urls[0])
    assert (await client.get(stale)).status == 404
    assert (await client.get("/static/x/../../settings.py")).status == 404


async def test_api_reference_page_is_swagger_ui_served_locally(client: TestClient) -> None:
    page = await (await client.get("/api/v1/docs")).text()
    assets = re.findall(r'(?:src|href)="(docs/assets/[^"]+)"', page)
    assert len(assets) == 3 and any("swagger-ui-bundle" in a for a in assets)
    assert "http" not in "".join(assets)  # nothing from a CDN
    for asset in assets:
        response = await client.get("/api/v1/" + asset)
        assert response.status == 200 and "immutable" in response.headers["Cache-Control"]
    assert (await client.get("/api/v1/docs/openapi.json")).status == 200


async def test_ui_off_in_plugin_mode_or_when_asked(tmp_path: Any, aiohttp_client: Any) -> None:
    from tests.conftest import make_settings
    from tracker.http.app import create_app

    client = await aiohttp_client(create_app(make_settings(tmp_path / "d"), ui=False))
    assert (await client.get("/login")).status == 404
    assert (await client.get("/api/v1/docs")).status == 200


async def test_the_ui_serves_exactly_its_declared_routes(tmp_path: Any) -> None:
    from tests.conftest import make_settings
    from tracker.http.app import create_app
    from tracker.http.handlers.docs import DOCS_ASSETS_PATH
    from tracker.ui import ui_routes

    def served(app: Any) -> set[tuple[str, str]]:
        return {(r.method, r.resource.canonical) for r in app.router.routes()
                if r.method != "HEAD" and r.resource is not None}  # fmt: skip

    with_ui = served(create_app(make_settings(tmp_path / "a")))
    without = served(create_app(make_settings(tmp_path / "b"), ui=False))
    assert with_ui - without == ui_routes()
    assert ("GET", DOCS_ASSETS_PATH) in without


async def test_login_throttling_applies_to_the_sign_in_form(
    tmp_path: Any, aiohttp_client: Any
) -> None:
    from tests.conftest import make_settings
    from tracker.http.app import create_app

    settings = make_settings(tmp_path / "d", login_attempts_per_address=2)
    client = await aiohttp_client(create_app(settings))
    http = await session(client)
    try:
        statuses = []
        for _ in range(3):
            response = await post(http, "/login", {"email": "a@example.com", "password": "x"},
                                  via="/login")  # fmt: skip
            statuses.append(response.status)
        assert statuses == [401, 401, 429]
        assert "Too many" in await response.text() or "try again" in (await response.text())
    finally:
        await http.close()


async def test_sign_in_redirects_only_to_local_paths(client: TestClient, api: Api) -> None:
    user = await api.user()
    for target, expected in (("/o/x", "/o/x"), ("//evil.example", "/"),
                             ("/\\evil.example", "/"), ("https://evil.example", "/")):  # fmt: skip
        http = await session(client)
        try:
            token = await csrf(http)
            response = await http.post(
                "/login",
                params={"next": target},
                data={"csrf_token": token, "email": user["email"], "password": user["password"]},
                allow_redirects=False,
            )
            assert response.status == 303
            assert response.headers["Location"] == expected, target
        finally:
            await http.close()


async def test_every_ui_form_route_refuses_a_post_without_the_csrf_token(
    client: TestClient, api: Api
) -> None:
    """Each state-changing UI route (the new ones included) checks the token before anything."""
    from tracker.ui import ui_routes

    http, owner, _ = await _signed_in_owner(client, api)
    try:
        values = {"org": "sec", "project": "WEB", "number": "1"}
        posts = sorted(path for method, path in ui_routes() if method == "POST")
        assert len(posts) > 25
        for template in posts:
            path = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "x"), template)
            response = await http.post(path, data={"title": "forged", "name": "forged"},
                                       allow_redirects=False)  # fmt: skip
            assert response.status == 403, template
            assert "text/html" in response.headers["Content-Type"], template
        issue = await client.get("/api/v1/orgs/sec/projects/WEB/issues/1", headers=owner["headers"])
        assert (await issue.json())["version"] == 1  # nothing changed
    finally:
        await http.close()
