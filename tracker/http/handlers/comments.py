"""Comments on an issue (and the URL parsing the other issue sub-resources share)."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.comments import Comment, CommentIn, CommentPatch, SubListQuery
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.http.params import ISSUE_PATH, etag, if_match, issue_number
from tracker.services import comments
from tracker.services.access import ProjectAccess


async def list_comments(call: Call[ProjectAccess]) -> web.Response:
    page = await comments.list_comments(call.core, call.access, issue_number(call), call.query)
    return json_response(page)


async def create_comment(call: Call[ProjectAccess]) -> web.Response:
    number = issue_number(call)
    comment = await comments.create_comment(call.core, call.access, number, call.body, call.actor)
    return json_response(comment, status=201, headers=etag(comment.version))


async def update_comment(call: Call[ProjectAccess]) -> web.Response:
    comment = await comments.update_comment(
        call.core,
        call.access,
        issue_number(call),
        call.params["comment_id"],
        call.body,
        if_match(call),
        call.actor,
    )
    return json_response(comment, headers=etag(comment.version))


async def delete_comment(call: Call[ProjectAccess]) -> web.Response:
    await comments.delete_comment(
        call.core, call.access, issue_number(call), call.params["comment_id"], call.actor
    )
    return web.Response(status=204)


PATH = ISSUE_PATH + "/comments"
ROUTES = [
    Route(
        "GET",
        PATH,
        list_comments,
        Permission.PROJECT_READ,
        "An issue's comments, oldest first",
        query=SubListQuery,
        response=Page[Comment],
        tag="comments",
    ),
    Route(
        "POST",
        PATH,
        create_comment,
        Permission.COMMENT_CREATE,
        "Comment on an issue",
        body=CommentIn,
        response=Comment,
        status=201,
        tag="comments",
    ),
    Route(
        "PATCH",
        PATH + "/{comment_id}",
        update_comment,
        Permission.COMMENT_CREATE,
        "Edit your comment (If-Match honoured)",
        body=CommentPatch,
        response=Comment,
        errors=(412,),
        tag="comments",
    ),
    Route(
        "DELETE",
        PATH + "/{comment_id}",
        delete_comment,
        Permission.COMMENT_CREATE,
        "Delete your comment (project admins: any)",
        status=204,
        tag="comments",
    ),
]
