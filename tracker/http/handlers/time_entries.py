"""Time entries on an issue, with totals per user."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.comments import SubListQuery, TimeEntry, TimeEntryIn, TimeEntryPage
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.http.params import ISSUE_PATH, issue_number
from tracker.services import time_entries
from tracker.services.access import ProjectAccess


async def list_time_entries(call: Call[ProjectAccess]) -> web.Response:
    page = await time_entries.list_time_entries(
        call.core, call.access, issue_number(call), call.query
    )
    return json_response(page)


async def log_time(call: Call[ProjectAccess]) -> web.Response:
    entry = await time_entries.log_time(
        call.core, call.access, issue_number(call), call.body, call.actor
    )
    return json_response(entry, status=201)


async def delete_time_entry(call: Call[ProjectAccess]) -> web.Response:
    await time_entries.delete_time_entry(
        call.core, call.access, issue_number(call), call.params["entry_id"], call.actor
    )
    return web.Response(status=204)


PATH = ISSUE_PATH + "/time-entries"
ROUTES = [
    Route(
        "GET",
        PATH,
        list_time_entries,
        Permission.PROJECT_READ,
        "An issue's time entries with totals overall and per user",
        query=SubListQuery,
        response=TimeEntryPage,
        tag="time",
    ),
    Route(
        "POST",
        PATH,
        log_time,
        Permission.TIME_LOG,
        "Log time on an issue",
        body=TimeEntryIn,
        response=TimeEntry,
        status=201,
        tag="time",
    ),
    Route(
        "DELETE",
        PATH + "/{entry_id}",
        delete_time_entry,
        Permission.TIME_LOG,
        "Delete your time entry (project admins: any)",
        status=204,
        tag="time",
    ),
]
