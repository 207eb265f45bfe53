"""The OpenAPI document and a human-readable page over it."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.permissions import Permission
from tracker.http.binding import API_PREFIX, ROUTE_TABLE, Call, Route
from tracker.services.access import UserAccess
from tracker.ui.assets import Assets

#: Swagger UI (vendored from npm, tracker/ui/static/VENDORED.md) over the OpenAPI document:
#: every operation with parameters, schemas, examples and "try it out". Its files are
#: served below the docs URL, so the page works in plugin mode under any mount prefix.
_DOCS_FILES = ("vendor/swagger-ui-bundle-5.36.0.js", "vendor/swagger-ui-5.36.0.css", "docs.js")
_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rhythm API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="docs/assets/%(css)s"></head>
<body><noscript><p>The API reference needs JavaScript; the machine-readable document is
<a href="docs/openapi.json">openapi.json</a> (OpenAPI 3.1).</p></noscript>
<div id="swagger-ui" data-spec="docs/openapi.json"></div>
<script src="docs/assets/%(bundle)s"></script><script src="docs/assets/%(init)s"></script>
</body></html>"""
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
DOCS_ASSETS = web.AppKey("docs_assets", Assets)
#: The reference page's static files (served outside the JSON route table).
DOCS_ASSETS_PATH = API_PREFIX + "/docs/assets/{digest}/{name}"


def setup_docs(app: web.Application) -> None:
    """Serve the reference page's static files (outside the route table: not API operations)."""
    assets = Assets(files=_DOCS_FILES)
    app[DOCS_ASSETS] = assets
    app.router.add_get(DOCS_ASSETS_PATH.replace("{name}", "{name:.+}"), assets.serve)


async def openapi_json(call: Call[UserAccess]) -> web.Response:
    body = call.request.app[ROUTE_TABLE].openapi()
    return web.Response(body=body, content_type="application/json")


async def docs_page(call: Call[UserAccess]) -> web.Response:
    assets = call.request.app[DOCS_ASSETS]
    urls = {key: assets.url(name).removeprefix("/static/")
            for key, name in zip(("bundle", "css", "init"), _DOCS_FILES, strict=True)}  # fmt: skip
    headers = {"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "same-origin"}  # fmt: skip
    return web.Response(text=_DOCS_PAGE % urls, content_type="text/html", headers=headers)


ROUTES = [
    Route(
        "GET",
        "/docs/openapi.json",
        openapi_json,
        Permission.PUBLIC,
        "OpenAPI 3.1 document",
        tag="docs",
    ),
    Route("GET", "/docs", docs_page, Permission.PUBLIC, "API reference page", tag="docs"),
]
