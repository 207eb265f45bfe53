"""Stages (board columns) and transition rules of a project."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.workflow import (
    Stage,
    StageDeleteQuery,
    StageIn,
    StageOrder,
    StagePatch,
    Transitions,
    TransitionsIn,
)
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import workflow
from tracker.services.access import ProjectAccess

PATH = "/orgs/{org}/projects/{project}/stages"


async def list_stages(call: Call[ProjectAccess]) -> web.Response:
    return json_response(Page[Stage](items=await workflow.list_stages(call.core, call.access)))


async def create_stage(call: Call[ProjectAccess]) -> web.Response:
    stage = await workflow.create_stage(call.core, call.access, call.body, call.actor)
    return json_response(stage, status=201)


async def reorder_stages(call: Call[ProjectAccess]) -> web.Response:
    stages = await workflow.reorder_stages(call.core, call.access, call.body, call.actor)
    return json_response(Page[Stage](items=stages))


async def update_stage(call: Call[ProjectAccess]) -> web.Response:
    stage_id = call.params["stage_id"]
    stage = await workflow.update_stage(call.core, call.access, stage_id, call.body, call.actor)
    return json_response(stage)


async def delete_stage(call: Call[ProjectAccess]) -> web.Response:
    await workflow.delete_stage(
        call.core, call.access, call.params["stage_id"], call.query.move_to, call.actor
    )
    return web.Response(status=204)


async def get_transitions(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await workflow.get_transitions(call.core, call.access))


async def put_transitions(call: Call[ProjectAccess]) -> web.Response:
    rules = await workflow.put_transitions(call.core, call.access, call.body, call.actor)
    return json_response(rules)


TRANSITIONS = "/orgs/{org}/projects/{project}/transitions"

ROUTES = [
    Route(
        "GET",
        PATH,
        list_stages,
        Permission.PROJECT_READ,
        "The project's stages in order",
        response=Page[Stage],
        tag="workflow",
    ),
    Route(
        "POST",
        PATH,
        create_stage,
        Permission.WORKFLOW_MANAGE,
        "Add a stage",
        body=StageIn,
        response=Stage,
        status=201,
        errors=(409,),
        tag="workflow",
    ),
    Route(
        "PATCH",
        PATH,
        reorder_stages,
        Permission.WORKFLOW_MANAGE,
        'Reorder the stages ({"order": [stage_id, ...]})',
        body=StageOrder,
        response=Page[Stage],
        tag="workflow",
    ),
    Route(
        "PATCH",
        PATH + "/{stage_id}",
        update_stage,
        Permission.WORKFLOW_MANAGE,
        "Rename, recategorise or move a stage",
        body=StagePatch,
        response=Stage,
        errors=(409,),
        tag="workflow",
    ),
    Route(
        "DELETE",
        PATH + "/{stage_id}",
        delete_stage,
        Permission.WORKFLOW_MANAGE,
        "Delete a stage; one holding issues needs ?move_to=<stage id> (else 409)",
        query=StageDeleteQuery,
        status=204,
        errors=(409,),
        tag="workflow",
    ),
    Route(
        "GET",
        TRANSITIONS,
        get_transitions,
        Permission.PROJECT_READ,
        "Transition rules (empty: every move allowed)",
        response=Transitions,
        tag="workflow",
    ),
    Route(
        "PUT",
        TRANSITIONS,
        put_transitions,
        Permission.WORKFLOW_MANAGE,
        "Replace the transition rules",
        body=TransitionsIn,
        response=Transitions,
        tag="workflow",
    ),
]
