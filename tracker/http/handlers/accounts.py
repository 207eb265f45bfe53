"""Accounts: register, login, refresh, logout, the current user."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.accounts import (
    LoginIn,
    Me,
    RefreshIn,
    RegisterIn,
    TokenPair,
    User,
    UserPatch,
)
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.http.clients import client_address
from tracker.services import accounts
from tracker.services.access import UserAccess


async def register(call: Call[UserAccess]) -> web.Response:
    address = client_address(call.request)
    return json_response(await accounts.register(call.core, call.body, address), status=201)


async def login(call: Call[UserAccess]) -> web.Response:
    address = client_address(call.request)
    return json_response(await accounts.login(call.core, call.body, address))


async def refresh(call: Call[UserAccess]) -> web.Response:
    return json_response(await accounts.refresh(call.core, call.body.refresh_token))


async def logout(call: Call[UserAccess]) -> web.Response:
    await accounts.logout(call.core, call.body.refresh_token)
    return web.Response(status=204)


async def me(call: Call[UserAccess]) -> web.Response:
    return json_response(await accounts.get_user(call.core, call.user_id))


async def update_me(call: Call[UserAccess]) -> web.Response:
    assert call.principal is not None
    return json_response(await accounts.update_me(call.core, call.principal, call.body))


PUBLIC, USER = Permission.PUBLIC, Permission.AUTHENTICATED
ROUTES = [
    Route(
        "POST",
        "/auth/register",
        register,
        PUBLIC,
        "Create an account",
        body=RegisterIn,
        response=User,
        status=201,
        errors=(403, 429),
        tag="auth",
    ),
    Route(
        "POST",
        "/auth/login",
        login,
        PUBLIC,
        "Log in",
        body=LoginIn,
        response=TokenPair,
        errors=(401, 429, 503),
        tag="auth",
    ),
    Route(
        "POST",
        "/auth/refresh",
        refresh,
        PUBLIC,
        "Rotate a refresh token",
        body=RefreshIn,
        response=TokenPair,
        errors=(401,),
        tag="auth",
    ),
    Route(
        "POST",
        "/auth/logout",
        logout,
        PUBLIC,
        "Revoke a refresh-token family",
        body=RefreshIn,
        status=204,
        tag="auth",
    ),
    Route("GET", "/users/me", me, USER, "The current user", response=Me, tag="auth"),
    Route(
        "PATCH",
        "/users/me",
        update_me,
        USER,
        "Change the current user (name, password, notification preferences)",
        body=UserPatch,
        response=Me,
        tag="auth",
    ),
]
