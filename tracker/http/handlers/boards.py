"""The Kanban board and the backlog of a project."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.workflow import BacklogMove, BacklogQuery, Board, BoardQuery, Card
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import boards
from tracker.services.access import ProjectAccess

PROJECT = "/orgs/{org}/projects/{project}"


async def project_board(call: Call[ProjectAccess]) -> web.Response:
    body = await boards.project_board_json(call.core, call.access, call.query)
    return web.Response(body=body, content_type="application/json")


async def backlog(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await boards.backlog(call.core, call.access, call.query))


async def move_in_backlog(call: Call[ProjectAccess]) -> web.Response:
    card = await boards.move_in_backlog(call.core, call.access, call.body, call.actor)
    return json_response(card)


ROUTES = [
    Route(
        "GET",
        PROJECT + "/board",
        project_board,
        Permission.PROJECT_READ,
        "Kanban board: columns in order with counts and ranked cards",
        query=BoardQuery,
        response=Board,
        tag="boards",
    ),
    Route(
        "GET",
        PROJECT + "/backlog",
        backlog,
        Permission.PROJECT_READ,
        "Backlog: open issues without a sprint, ranked",
        query=BacklogQuery,
        response=Page[Card],
        tag="boards",
    ),
    Route(
        "POST",
        PROJECT + "/backlog/move",
        move_in_backlog,
        Permission.SPRINT_EDIT,
        "Move a backlog issue right before or after another",
        body=BacklogMove,
        response=Card,
        tag="boards",
    ),
]
