"""Relations between issues (the inverse side is recorded automatically)."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.comments import Relation, RelationIn, SubListQuery
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.http.params import ISSUE_PATH, issue_number
from tracker.services import relations
from tracker.services.access import ProjectAccess


async def list_relations(call: Call[ProjectAccess]) -> web.Response:
    page = await relations.list_relations(call.core, call.access, issue_number(call), call.query)
    return json_response(page)


async def create_relation(call: Call[ProjectAccess]) -> web.Response:
    relation = await relations.create_relation(
        call.core, call.access, issue_number(call), call.body, call.actor
    )
    return json_response(relation, status=201)


async def delete_relation(call: Call[ProjectAccess]) -> web.Response:
    await relations.delete_relation(
        call.core, call.access, issue_number(call), call.params["relation_id"], call.actor
    )
    return web.Response(status=204)


PATH = ISSUE_PATH + "/relations"
ROUTES = [
    Route(
        "GET",
        PATH,
        list_relations,
        Permission.PROJECT_READ,
        "An issue's relations",
        query=SubListQuery,
        response=Page[Relation],
        tag="relations",
    ),
    Route(
        "POST",
        PATH,
        create_relation,
        Permission.ISSUE_UPDATE,
        "Relate an issue to another (records the inverse too)",
        body=RelationIn,
        response=Relation,
        status=201,
        errors=(409,),
        tag="relations",
    ),
    Route(
        "DELETE",
        PATH + "/{relation_id}",
        delete_relation,
        Permission.ISSUE_UPDATE,
        "Delete a relation and its inverse",
        status=204,
        tag="relations",
    ),
]
