"""Search across an org's visible projects with the query language (SPEC §5), and the
caller's saved searches (the same service as `/users/me/searches`)."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from markupsafe import Markup

from tracker.domain.models.search import SavedSearchIn, SearchQuery
from tracker.domain.permissions import Permission
from tracker.errors import QuerySyntaxError
from tracker.services import saved_searches, search
from tracker.ui.app import Ctx, page, parse_form, redirect

SEARCH = "/o/{org}/search"
MAX_SAVED_SHOWN = 200


def _user_id(ctx: Ctx) -> str:
    assert ctx.principal is not None  # an org page: signed in
    return ctx.principal.user_id


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
    listed = await saved_searches.list_saved(ctx.core, _user_id(ctx), MAX_SAVED_SHOWN, None)
    slug = ctx.access.org.slug
    saved = [s for s in listed.items if s.org in (None, slug)]  # this org's and everywhere's
    return ctx.render("search.html", status=400 if fault else 200, q=query.q, hits=hits,
                      fault=fault, Markup=Markup, saved=saved)  # fmt: skip


@page(Permission.ORG_READ)
async def save_search(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    slug = ctx.access.org.slug
    data = parse_form(SavedSearchIn, {"name": form.get("name", "").strip(),
                                      "query": form.get("query", ""), "org": slug})  # fmt: skip
    await saved_searches.create_saved(ctx.core, _user_id(ctx), data)
    return redirect(f"/o/{slug}/search?q={quote(data.query, safe='')}")


@page(Permission.ORG_READ)
async def delete_search(ctx: Ctx) -> web.StreamResponse:
    await saved_searches.delete_saved(ctx.core, _user_id(ctx), ctx.params["search_id"])
    return redirect(f"/o/{ctx.access.org.slug}/search")


ROUTES = [
    ("GET", SEARCH, search_page),
    ("POST", SEARCH + "/saved", save_search),
    ("POST", SEARCH + "/saved/{search_id}/delete", delete_search),
]
