"""Projects: create, list, get, patch (If-Match aware), soft delete, restore."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.orgs import Project, ProjectIn, ProjectListQuery, ProjectPatch
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_body, json_response
from tracker.http.params import etag, if_match
from tracker.services import projects
from tracker.services.access import OrgAccess, ProjectAccess


async def create_project(call: Call[OrgAccess]) -> web.Response:
    project = await projects.create_project(call.core, call.access, call.body, call.actor)
    return json_response(project, status=201, headers=etag(project.version))


async def list_projects(call: Call[OrgAccess]) -> web.Response:
    return json_body(await projects.list_projects_json(call.core, call.access, call.query))


async def get_project(call: Call[ProjectAccess]) -> web.Response:
    project = await projects.get_project(call.access)
    return json_response(project, headers=etag(project.version))


async def patch_project(call: Call[ProjectAccess]) -> web.Response:
    project = await projects.patch_project(
        call.core, call.access, call.body, call.actor, if_match(call)
    )
    return json_response(project, headers=etag(project.version))


async def delete_project(call: Call[ProjectAccess]) -> web.Response:
    await projects.delete_project(call.core, call.access, call.actor)
    return web.Response(status=204)


async def restore_project(call: Call[OrgAccess]) -> web.Response:
    key = call.params["project"]
    project = await projects.restore_project(call.core, call.access, key, call.actor)
    return json_response(project, headers=etag(project.version))


P = Permission
ROUTES = [
    Route(
        "POST",
        "/orgs/{org}/projects",
        create_project,
        P.PROJECT_CREATE,
        "Create a project",
        body=ProjectIn,
        response=Project,
        status=201,
        errors=(409,),
        tag="projects",
    ),
    Route(
        "GET",
        "/orgs/{org}/projects",
        list_projects,
        P.ORG_READ,
        "Projects the caller can see",
        query=ProjectListQuery,
        response=Page[Project],
        tag="projects",
    ),
    Route(
        "GET",
        "/orgs/{org}/projects/{project}",
        get_project,
        P.PROJECT_READ,
        "A project",
        response=Project,
        tag="projects",
    ),
    Route(
        "PATCH",
        "/orgs/{org}/projects/{project}",
        patch_project,
        P.PROJECT_MANAGE,
        "Change a project's name, description or visibility",
        body=ProjectPatch,
        response=Project,
        errors=(412,),
        tag="projects",
    ),
    Route(
        "DELETE",
        "/orgs/{org}/projects/{project}",
        delete_project,
        P.PROJECT_MANAGE,
        "Delete a project (soft; org owners/admins can restore it)",
        status=204,
        tag="projects",
    ),
    # ORG_MANAGE, an org-scoped permission: the wrapper resolves only live projects,
    # so the service looks the key up among deleted ones itself.
    Route(
        "POST",
        "/orgs/{org}/projects/{project}/restore",
        restore_project,
        P.ORG_MANAGE,
        "Restore a deleted project",
        response=Project,
        errors=(409,),
        tag="projects",
    ),
]
