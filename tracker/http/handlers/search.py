"""Org-wide search: GET /orgs/{org}/issues?q= across every project the caller can see.

The project-scoped search is `GET .../projects/{project}/issues?q=` (handlers/issues.py
hands `q` to the same service).
"""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.search import SearchHit, SearchQuery
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import search
from tracker.services.access import OrgAccess


async def search_org_issues(call: Call[OrgAccess]) -> web.Response:
    query: SearchQuery = call.query
    page = await search.search_org_issues(
        call.core,
        call.access,
        query.q,
        limit=query.limit,
        cursor=query.cursor,
        highlight=query.highlight,
    )
    return json_response(page)


ROUTES = [
    Route(
        "GET",
        "/orgs/{org}/issues",
        search_org_issues,
        Permission.ORG_READ,
        "Search issues across the org's visible projects (query language, ranked)",
        query=SearchQuery,
        response=Page[SearchHit],
        tag="search",
    )
]
