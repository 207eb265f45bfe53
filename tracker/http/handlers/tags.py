"""Tags: the project catalogue and the tags of an issue."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.issues import Issue, IssueTagsIn, PageQuery, Tag, TagIn
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.http.handlers.issues import issue_response
from tracker.http.params import ISSUE_PATH, if_match, issue_number
from tracker.services import issues, tags
from tracker.services.access import ProjectAccess

TAGS = "/orgs/{org}/projects/{project}/tags"


async def list_tags(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await tags.list_tags(call.core, call.access, call.query))


async def create_tag(call: Call[ProjectAccess]) -> web.Response:
    tag = await tags.create_tag(call.core, call.access, call.body, call.actor)
    return json_response(tag, status=201)


async def delete_tag(call: Call[ProjectAccess]) -> web.Response:
    await tags.delete_tag(call.core, call.access, call.params["tag_id"], call.actor)
    return web.Response(status=204)


async def set_issue_tags(call: Call[ProjectAccess]) -> web.Response:
    issue = await issues.set_issue_tags(
        call.core, call.access, issue_number(call), call.body.tags, call.actor, if_match(call)
    )
    return issue_response(issue)


ROUTES = [
    Route(
        "GET",
        TAGS,
        list_tags,
        Permission.PROJECT_READ,
        "The project's tags",
        query=PageQuery,
        response=Page[Tag],
        tag="tags",
    ),
    Route(
        "POST",
        TAGS,
        create_tag,
        Permission.TAG_CREATE,
        "Add a tag to the catalogue",
        body=TagIn,
        response=Tag,
        status=201,
        errors=(409,),
        tag="tags",
    ),
    Route(
        "DELETE",
        TAGS + "/{tag_id}",
        delete_tag,
        Permission.PROJECT_MANAGE,
        "Delete a tag (and remove it from every issue)",
        status=204,
        tag="tags",
    ),
    Route(
        "PUT",
        ISSUE_PATH + "/tags",
        set_issue_tags,
        Permission.ISSUE_UPDATE,
        "Replace the issue's tags (unknown names are created for developers)",
        body=IssueTagsIn,
        response=Issue,
        errors=(412,),
        tag="tags",
    ),
]
