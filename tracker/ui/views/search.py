"""Search across an org's visible projects with the query language (SPEC §5)."""

from __future__ import annotations

from aiohttp import web
from markupsafe import Markup

from tracker.domain.models.search import SearchQuery
from tracker.domain.permissions import Permission
from tracker.errors import QuerySyntaxError
from tracker.services import search
from tracker.ui.app import Ctx, page, parse_form


@page(Permission.ORG_READ)
async def search_page(ctx: Ctx) -> web.StreamResponse:
    query = parse_form(SearchQuery, {"q": ctx.request.query.get("q", ""), "limit": 50})
    hits, fault = None, None
    if query.q.strip():
        try:
            page_ = await search.search_org_issues(
                ctx.core, ctx.access, query.q, limit=query.limit, cursor=None, highlight=True
            )
            hits = page_.items
        except QuerySyntaxError as error:
            fault = error
    return ctx.render("search.html", status=400 if fault else 200, q=query.q, hits=hits,
                      fault=fault, Markup=Markup)  # fmt: skip


ROUTES = [("GET", "/o/{org}/search", search_page)]
