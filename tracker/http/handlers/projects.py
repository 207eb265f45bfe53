"""Projects."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.orgs import Project, ProjectIn
from tracker.domain.permissions import Permission
from tracker.http.routes import Call, Route, json_response
from tracker.services import projects


async def create_project(call: Call) -> web.Response:
    project = await projects.create_project(call.core, call.access, call.body, call.actor)
    return json_response(project, status=201)


async def get_project(call: Call) -> web.Response:
    return json_response(await projects.get_project(call.access))


ROUTES = [
    Route("POST", "/orgs/{org}/projects", create_project, Permission.PROJECT_CREATE,
          "Create a project", body=ProjectIn, response=Project, status=201, errors=(409,),
          tag="projects"),
    Route("GET", "/orgs/{org}/projects/{project}", get_project, Permission.PROJECT_READ,
          "A project", response=Project, tag="projects"),
]  # fmt: skip
