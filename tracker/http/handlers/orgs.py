"""Organizations."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.orgs import Org, OrgIn
from tracker.domain.permissions import Permission
from tracker.http.routes import Call, Route, json_response
from tracker.services import orgs


async def create_org(call: Call) -> web.Response:
    assert call.principal is not None
    org = await orgs.create_org(call.core, call.principal, call.body, call.actor)
    return json_response(org, status=201)


async def list_orgs(call: Call) -> web.Response:
    assert call.principal is not None
    items = await orgs.list_my_orgs(call.core, call.principal)
    return json_response(Page[Org](items=items))


async def get_org(call: Call) -> web.Response:
    org = call.access.org
    assert org is not None
    return json_response(Org(id=org.id, slug=org.slug, name=org.name, role=org.role,
                             created_at=org.created_at))  # fmt: skip


ROUTES = [
    Route("POST", "/orgs", create_org, Permission.AUTHENTICATED, "Create an organization",
          body=OrgIn, response=Org, status=201, errors=(409,), tag="orgs"),
    Route("GET", "/orgs", list_orgs, Permission.AUTHENTICATED, "My organizations",
          response=Page[Org], tag="orgs"),
    Route("GET", "/orgs/{org}", get_org, Permission.ORG_READ, "An organization",
          response=Org, tag="orgs"),
]  # fmt: skip
