"""Watchers of an issue, and the one-click unsubscribe link of notification emails."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.accounts import Notifications
from tracker.domain.models.base import Page
from tracker.domain.models.notifications import Watch, Watcher
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.http.params import ISSUE_PATH, issue_number
from tracker.services import notify_links, watchers
from tracker.services.access import ProjectAccess, UserAccess

WATCHERS = ISSUE_PATH + "/watchers"


async def list_watchers(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await watchers.list_watchers(call.core, call.access, issue_number(call)))


async def my_watch(call: Call[ProjectAccess]) -> web.Response:
    watch = await watchers.my_watch(call.core, call.access, issue_number(call), call.user_id)
    return json_response(watch)


async def watch(call: Call[ProjectAccess]) -> web.Response:
    number = issue_number(call)
    return json_response(
        await watchers.set_my_watch(call.core, call.access, number, call.actor, True)
    )


async def unwatch(call: Call[ProjectAccess]) -> web.Response:
    number = issue_number(call)
    return json_response(
        await watchers.set_my_watch(call.core, call.access, number, call.actor, False)
    )


async def unsubscribe(call: Call[UserAccess]) -> web.Response:
    return json_response(await notify_links.unsubscribe(call.core, call.params["token"]))


ROUTES = [
    Route(
        "GET",
        WATCHERS,
        list_watchers,
        Permission.PROJECT_READ,
        "Who gets email about the issue (reporter, assignees, commenters, explicit watchers)",
        response=Page[Watcher],
        tag="watchers",
    ),
    Route(
        "GET",
        WATCHERS + "/me",
        my_watch,
        Permission.PROJECT_READ,
        "Whether I watch the issue, and why",
        response=Watch,
        tag="watchers",
    ),
    Route(
        "PUT",
        WATCHERS + "/me",
        watch,
        Permission.PROJECT_READ,
        "Watch the issue",
        response=Watch,
        tag="watchers",
    ),
    Route(
        "DELETE",
        WATCHERS + "/me",
        unwatch,
        Permission.PROJECT_READ,
        "Stop watching the issue (also silences being its reporter, assignee or commenter)",
        response=Watch,
        tag="watchers",
    ),
    Route(
        "POST",
        "/notifications/unsubscribe/{token}",
        unsubscribe,
        Permission.PUBLIC,
        "One-click unsubscribe (RFC 8058) from an email's List-Unsubscribe: "
        "turns notification email off",
        response=Notifications,
        tag="watchers",
    ),
]
