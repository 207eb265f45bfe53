"""Sprints: plan, start, complete, their board and burndown."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.workflow import (
    Board,
    Burndown,
    Sprint,
    SprintBoardQuery,
    SprintComplete,
    SprintIn,
    SprintPatch,
    SprintQuery,
)
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import boards, sprints
from tracker.services.access import ProjectAccess

PATH = "/orgs/{org}/projects/{project}/sprints"
ONE = PATH + "/{sprint_id}"


async def create_sprint(call: Call[ProjectAccess]) -> web.Response:
    sprint = await sprints.create_sprint(call.core, call.access, call.body, call.actor)
    return json_response(sprint, status=201)


async def list_sprints(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await sprints.list_sprints(call.core, call.access, call.query))


async def get_sprint(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await sprints.get_sprint(call.core, call.access, call.params["sprint_id"]))


async def update_sprint(call: Call[ProjectAccess]) -> web.Response:
    sprint = await sprints.update_sprint(
        call.core, call.access, call.params["sprint_id"], call.body, call.actor
    )
    return json_response(sprint)


async def start_sprint(call: Call[ProjectAccess]) -> web.Response:
    sprint_id = call.params["sprint_id"]
    return json_response(await sprints.start_sprint(call.core, call.access, sprint_id, call.actor))


async def complete_sprint(call: Call[ProjectAccess]) -> web.Response:
    sprint = await sprints.complete_sprint(
        call.core, call.access, call.params["sprint_id"], call.body, call.actor
    )
    return json_response(sprint)


async def sprint_board(call: Call[ProjectAccess]) -> web.Response:
    board = await boards.sprint_board(call.core, call.access, call.params["sprint_id"], call.query)
    return json_response(board)


async def sprint_burndown(call: Call[ProjectAccess]) -> web.Response:
    sprint_id = call.params["sprint_id"]
    return json_response(await sprints.sprint_burndown(call.core, call.access, sprint_id))


ROUTES = [
    Route(
        "POST",
        PATH,
        create_sprint,
        Permission.SPRINT_EDIT,
        "Plan a sprint",
        body=SprintIn,
        response=Sprint,
        status=201,
        tag="sprints",
    ),
    Route(
        "GET",
        PATH,
        list_sprints,
        Permission.PROJECT_READ,
        "Sprints in creation order",
        query=SprintQuery,
        response=Page[Sprint],
        tag="sprints",
    ),
    Route(
        "GET", ONE, get_sprint, Permission.PROJECT_READ, "A sprint", response=Sprint, tag="sprints"
    ),
    Route(
        "PATCH",
        ONE,
        update_sprint,
        Permission.SPRINT_EDIT,
        "Edit a sprint",
        body=SprintPatch,
        response=Sprint,
        errors=(409,),
        tag="sprints",
    ),
    Route(
        "POST",
        ONE + "/start",
        start_sprint,
        Permission.SPRINT_RUN,
        "Start a planned sprint (one active per project; needs both dates)",
        response=Sprint,
        errors=(409, 422),
        tag="sprints",
    ),
    Route(
        "POST",
        ONE + "/complete",
        complete_sprint,
        Permission.SPRINT_RUN,
        "Complete the active sprint; unfinished issues go to the backlog or a sprint",
        body=SprintComplete,
        response=Sprint,
        errors=(409,),
        tag="sprints",
    ),
    Route(
        "GET",
        ONE + "/board",
        sprint_board,
        Permission.PROJECT_READ,
        "The sprint's issues by stage",
        query=SprintBoardQuery,
        response=Board,
        tag="sprints",
    ),
    Route(
        "GET",
        ONE + "/burndown",
        sprint_burndown,
        Permission.PROJECT_READ,
        "Remaining issues and estimate per sprint day, from the change log",
        response=Burndown,
        tag="sprints",
    ),
]
