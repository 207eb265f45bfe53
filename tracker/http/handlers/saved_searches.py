"""Saved searches of the current user: GET/POST/DELETE /users/me/searches."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.search import SavedSearch, SavedSearchIn, SavedSearchListQuery
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import saved_searches
from tracker.services.access import UserAccess

SEARCHES = "/users/me/searches"


async def list_saved(call: Call[UserAccess]) -> web.Response:
    page = await saved_searches.list_saved(
        call.core, call.user_id, call.query.limit, call.query.cursor
    )
    return json_response(page)


async def create_saved(call: Call[UserAccess]) -> web.Response:
    saved = await saved_searches.create_saved(call.core, call.user_id, call.body)
    return json_response(saved, status=201)


async def delete_saved(call: Call[UserAccess]) -> web.Response:
    await saved_searches.delete_saved(call.core, call.user_id, call.params["search_id"])
    return web.Response(status=204)


USER = Permission.AUTHENTICATED
ROUTES = [
    Route(
        "GET",
        SEARCHES,
        list_saved,
        USER,
        "My saved searches, by name",
        query=SavedSearchListQuery,
        response=Page[SavedSearch],
        tag="search",
    ),
    Route(
        "POST",
        SEARCHES,
        create_saved,
        USER,
        "Save a search under a name",
        body=SavedSearchIn,
        response=SavedSearch,
        status=201,
        errors=(409,),
        tag="search",
    ),
    Route(
        "DELETE",
        SEARCHES + "/{search_id}",
        delete_saved,
        USER,
        "Delete a saved search",
        status=204,
        tag="search",
    ),
]
