"""Invitations: org admins invite an email address (see services/invites.py)."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.invites import Invite, InviteIn
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import invites
from tracker.services.access import OrgAccess


async def create_invite(call: Call[OrgAccess]) -> web.Response:
    return json_response(await invites.create_invite(call.core, call.access, call.body), status=201)


async def list_invites(call: Call[OrgAccess]) -> web.Response:
    return json_response(await invites.list_invites(call.core, call.access))


async def revoke_invite(call: Call[OrgAccess]) -> web.Response:
    await invites.revoke_invite(call.core, call.access, call.params["invite_id"])
    return web.Response(status=204)


INVITES = "/orgs/{org}/invites"
ROUTES = [
    Route(
        "POST",
        INVITES,
        create_invite,
        Permission.ORG_INVITE,
        "Invite an email address to the organization (lets it register when "
        "RHYTHM_SIGNUP=invite; it joins with the role on registering)",
        body=InviteIn,
        response=Invite,
        status=201,
        errors=(409, 429),
        tag="members",
    ),
    Route(
        "GET",
        INVITES,
        list_invites,
        Permission.ORG_INVITE,
        "Pending invitations",
        response=Page[Invite],
        tag="members",
    ),
    Route(
        "DELETE",
        INVITES + "/{invite_id}",
        revoke_invite,
        Permission.ORG_INVITE,
        "Revoke a pending invitation",
        status=204,
        tag="members",
    ),
]
