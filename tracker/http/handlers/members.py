"""Org and project members: list, add, change role, remove; leave; transfer ownership."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.orgs import (
    ListQuery,
    OrgMember,
    OrgMemberIn,
    OrgMemberPatch,
    OwnershipTransferIn,
    ProjectMember,
    ProjectMemberIn,
    ProjectMemberPatch,
)
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import members
from tracker.services.access import OrgAccess, ProjectAccess


async def list_org_members(call: Call[OrgAccess]) -> web.Response:
    return json_response(await members.list_org_members(call.core, call.access, call.query))


async def add_org_member(call: Call[OrgAccess]) -> web.Response:
    member = await members.add_org_member(call.core, call.access, call.body, call.actor)
    return json_response(member, status=201)


async def change_org_role(call: Call[OrgAccess]) -> web.Response:
    user_id = call.params["user_id"]
    member = await members.change_org_role(call.core, call.access, user_id, call.body, call.actor)
    return json_response(member)


async def remove_org_member(call: Call[OrgAccess]) -> web.Response:
    await members.remove_org_member(call.core, call.access, call.params["user_id"], call.actor)
    return web.Response(status=204)


async def leave_org(call: Call[OrgAccess]) -> web.Response:
    await members.leave_org(call.core, call.access, call.actor)
    return web.Response(status=204)


async def transfer_ownership(call: Call[OrgAccess]) -> web.Response:
    member = await members.transfer_ownership(call.core, call.access, call.body, call.actor)
    return json_response(member)


async def list_project_members(call: Call[ProjectAccess]) -> web.Response:
    page = await members.list_project_members(call.core, call.access, call.query)
    return json_response(page)


async def add_project_member(call: Call[ProjectAccess]) -> web.Response:
    member = await members.add_project_member(call.core, call.access, call.body, call.actor)
    return json_response(member, status=201)


async def change_project_role(call: Call[ProjectAccess]) -> web.Response:
    member = await members.change_project_role(
        call.core, call.access, call.params["user_id"], call.body, call.actor
    )
    return json_response(member)


async def remove_project_member(call: Call[ProjectAccess]) -> web.Response:
    await members.remove_project_member(call.core, call.access, call.params["user_id"], call.actor)
    return web.Response(status=204)


P = Permission
ORG_MEMBERS = "/orgs/{org}/members"
PROJECT_MEMBERS = "/orgs/{org}/projects/{project}/members"
ROUTES = [
    Route(
        "GET",
        ORG_MEMBERS,
        list_org_members,
        P.ORG_READ,
        "Members of an organization",
        query=ListQuery,
        response=Page[OrgMember],
        tag="members",
    ),
    Route(
        "POST",
        ORG_MEMBERS,
        add_org_member,
        P.ORG_MANAGE,
        "Add a user (by email or id) to an organization",
        body=OrgMemberIn,
        response=OrgMember,
        status=201,
        errors=(409,),
        tag="members",
    ),
    Route(
        "PATCH",
        ORG_MEMBERS + "/{user_id}",
        change_org_role,
        P.ORG_MANAGE,
        "Change a member's org role",
        body=OrgMemberPatch,
        response=OrgMember,
        errors=(409,),
        tag="members",
    ),
    Route(
        "DELETE",
        ORG_MEMBERS + "/{user_id}",
        remove_org_member,
        P.ORG_MANAGE,
        "Remove a member from an organization",
        status=204,
        errors=(409,),
        tag="members",
    ),
    Route(
        "POST",
        "/orgs/{org}/leave",
        leave_org,
        P.ORG_READ,
        "Leave an organization",
        status=204,
        errors=(409,),
        tag="members",
    ),
    Route(
        "POST",
        "/orgs/{org}/transfer",
        transfer_ownership,
        P.ORG_TRANSFER,
        "Transfer ownership to another member (the caller becomes admin)",
        body=OwnershipTransferIn,
        response=OrgMember,
        tag="members",
    ),
    Route(
        "GET",
        PROJECT_MEMBERS,
        list_project_members,
        P.PROJECT_READ,
        "Explicit members of a project",
        query=ListQuery,
        response=Page[ProjectMember],
        tag="members",
    ),
    Route(
        "POST",
        PROJECT_MEMBERS,
        add_project_member,
        P.MEMBERS_MANAGE,
        "Give an org member a project role",
        body=ProjectMemberIn,
        response=ProjectMember,
        status=201,
        errors=(409,),
        tag="members",
    ),
    Route(
        "PATCH",
        PROJECT_MEMBERS + "/{user_id}",
        change_project_role,
        P.MEMBERS_MANAGE,
        "Change a project member's role",
        body=ProjectMemberPatch,
        response=ProjectMember,
        tag="members",
    ),
    Route(
        "DELETE",
        PROJECT_MEMBERS + "/{user_id}",
        remove_project_member,
        P.MEMBERS_MANAGE,
        "Remove a project member",
        status=204,
        tag="members",
    ),
]
