"""The OpenAPI document and a human-readable page over it."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.permissions import Permission
from tracker.http.binding import ROUTE_TABLE, Call, Route
from tracker.services.access import UserAccess

_DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Rhythm API</title>
<style>body{font:15px system-ui;margin:2rem auto;max-width:60rem}code{background:#f3f3f3}
td{padding:.2rem .6rem;border-bottom:1px solid #eee}</style></head>
<body><h1>Rhythm API</h1><p>Machine-readable: <a href="docs/openapi.json">openapi.json</a>
(OpenAPI 3.1). Errors are <code>application/problem+json</code> (RFC 9457).</p>
<table>%s</table></body></html>"""


async def openapi_json(call: Call[UserAccess]) -> web.Response:
    body = call.request.app[ROUTE_TABLE].openapi()
    return web.Response(body=body, content_type="application/json")


async def docs_page(call: Call[UserAccess]) -> web.Response:
    rows = "".join(
        f"<tr><td><code>{r.method}</code></td><td><code>{r.full_path}</code></td>"
        f"<td>{r.summary}</td><td>{r.permission}</td></tr>"
        for r in call.request.app[ROUTE_TABLE].routes
    )
    return web.Response(text=_DOCS_PAGE % rows, content_type="text/html")


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
