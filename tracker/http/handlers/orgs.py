"""Organizations: create, list mine, get, rename, delete (archive)."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.orgs import ListQuery, Org, OrgIn, OrgPatch
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import orgs
from tracker.services.access import OrgAccess, UserAccess


async def create_org(call: Call[UserAccess]) -> web.Response:
    assert call.principal is not None
    org = await orgs.create_org(call.core, call.principal, call.body, call.actor)
    return json_response(org, status=201)


async def list_orgs(call: Call[UserAccess]) -> web.Response:
    assert call.principal is not None
    return json_response(await orgs.list_my_orgs(call.core, call.principal, call.query))


async def get_org(call: Call[OrgAccess]) -> web.Response:
    return json_response(orgs.get_org(call.access))


async def patch_org(call: Call[OrgAccess]) -> web.Response:
    return json_response(await orgs.patch_org(call.core, call.access, call.body, call.actor))


async def delete_org(call: Call[OrgAccess]) -> web.Response:
    await orgs.delete_org(call.core, call.access, call.actor)
    return web.Response(status=204)


ROUTES = [
    Route(
        "POST",
        "/orgs",
        create_org,
        Permission.AUTHENTICATED,
        "Create an organization",
        body=OrgIn,
        response=Org,
        status=201,
        errors=(409, 429),
        tag="orgs",
    ),
    Route(
        "GET",
        "/orgs",
        list_orgs,
        Permission.AUTHENTICATED,
        "My organizations",
        query=ListQuery,
        response=Page[Org],
        tag="orgs",
    ),
    Route(
        "GET",
        "/orgs/{org}",
        get_org,
        Permission.ORG_READ,
        "An organization",
        response=Org,
        tag="orgs",
    ),
    Route(
        "PATCH",
        "/orgs/{org}",
        patch_org,
        Permission.ORG_MANAGE,
        "Rename an organization or change its slug",
        body=OrgPatch,
        response=Org,
        errors=(409,),
        tag="orgs",
    ),
    Route(
        "DELETE",
        "/orgs/{org}",
        delete_org,
        Permission.ORG_DELETE,
        "Delete an organization (its data is archived, restorable with `rhythm org restore`)",
        status=204,
        errors=(409,),
        tag="orgs",
    ),
]
