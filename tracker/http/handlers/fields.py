"""Custom field definitions of a project."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.issues import CustomField, CustomFieldIn, CustomFieldPatch
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import custom_fields
from tracker.services.access import ProjectAccess

FIELDS = "/orgs/{org}/projects/{project}/fields"


async def list_fields(call: Call[ProjectAccess]) -> web.Response:
    items = await custom_fields.list_fields(call.core, call.access)
    return json_response(Page[CustomField](items=items))


async def create_field(call: Call[ProjectAccess]) -> web.Response:
    field = await custom_fields.create_field(call.core, call.access, call.body, call.actor)
    return json_response(field, status=201)


async def update_field(call: Call[ProjectAccess]) -> web.Response:
    field = await custom_fields.update_field(
        call.core, call.access, call.params["field_id"], call.body, call.actor
    )
    return json_response(field)


async def delete_field(call: Call[ProjectAccess]) -> web.Response:
    await custom_fields.delete_field(call.core, call.access, call.params["field_id"], call.actor)
    return web.Response(status=204)


ROUTES = [
    Route(
        "GET",
        FIELDS,
        list_fields,
        Permission.PROJECT_READ,
        "The project's custom fields (all of them, in display order)",
        response=Page[CustomField],
        tag="fields",
    ),
    Route(
        "POST",
        FIELDS,
        create_field,
        Permission.FIELDS_MANAGE,
        "Define a custom field",
        body=CustomFieldIn,
        response=CustomField,
        status=201,
        errors=(409,),
        tag="fields",
    ),
    Route(
        "PATCH",
        FIELDS + "/{field_id}",
        update_field,
        Permission.FIELDS_MANAGE,
        "Rename a field or change its options, required flag or position",
        body=CustomFieldPatch,
        response=CustomField,
        errors=(409,),
        tag="fields",
    ),
    Route(
        "DELETE",
        FIELDS + "/{field_id}",
        delete_field,
        Permission.FIELDS_MANAGE,
        "Delete a custom field definition",
        status=204,
        tag="fields",
    ),
]
