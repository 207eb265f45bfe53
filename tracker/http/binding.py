"""The binding machinery: how a declared Route becomes an aiohttp endpoint.

A Route names its permission, body and response models and extra statuses, so
one wrapper (`bind`) authenticates, authorizes, validates the body and calls
the handler, and `openapi.py` documents the same facts. Handler modules import
this module only; `routes.py` joins their `ROUTES` (no import loop).

`bind` builds the access the route's permission scope needs: `UserAccess` for
public/any-user routes, `OrgAccess` for org routes, `ProjectAccess` for project
routes, so a handler annotated `Call[ProjectAccess]` passes typed access on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiohttp import web
from multidict import CIMultiDict
from pydantic import BaseModel, ValidationError

from tracker.core import Core
from tracker.domain.changes import Actor
from tracker.domain.permissions import Permission, Scope, scope_of
from tracker.errors import Unauthorized, ValidationFailed
from tracker.http.body import parse_model
from tracker.http.keys import CORE, IDENTITY, ORIGIN
from tracker.services.access import (
    UserAccess,
    authorize_org,
    authorize_project,
)
from tracker.services.accounts import Principal, authenticate

API_PREFIX = "/api/v1"

A = TypeVar("A", bound=UserAccess)
ANONYMOUS = UserAccess(None)


@dataclass
class Call(Generic[A]):
    """Everything a handler needs, already authenticated, authorized and validated;
    `access` is the type the route's scope guarantees (see `bind`)."""

    request: web.Request
    core: Core
    principal: Principal | None
    access: A
    body: Any = None
    query: Any = None

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.match_info)

    @property
    def user_id(self) -> str:
        if self.principal is None:
            raise Unauthorized()
        return self.principal.user_id

    @property
    def actor(self) -> Actor:
        """The change-log actor of this request (origin `api`, or `plugin` when mounted)."""
        origin = self.request.app.get(ORIGIN, "api")
        return Actor(self.principal.user_id if self.principal else None, origin)


Handler = Callable[[Call[Any]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # below /api/v1, e.g. "/orgs/{org}/projects"
    handler: Handler
    permission: Permission
    summary: str
    body: type[BaseModel] | None = None
    #: (media type, model of one line) of a body the handler streams itself (JSON Lines)
    raw_body: tuple[str, type[BaseModel]] | None = None
    #: the multipart/form-data field carrying files of an upload the handler streams itself
    upload: str | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    #: the media type of a success body that is a file, not JSON
    produces: str | None = None
    status: int = 200
    errors: tuple[int, ...] = ()
    tag: str = "api"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def name(self) -> str:
        """A unique operation id, e.g. `get_orgs_org_projects`."""
        return re.sub(r"\W+", "_", f"{self.method}_{self.path}").strip("_").lower()


async def principal_of(request: web.Request) -> Principal | None:
    """The caller: the host's identity provider in plugin mode, else a Bearer JWT."""
    identity = request.app.get(IDENTITY)
    if identity is not None:
        return await identity(request)  # type: ignore[operator]
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <access token>'")
    return await authenticate(request.app[CORE], token.strip())


def parse_query(model: type[BaseModel], request: web.Request) -> BaseModel:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="query.", whole="body") from None


def _default_query(model: type[BaseModel] | None) -> BaseModel | None:
    """The query object of a request without a query string, validated once, for a frozen
    query model only (one shared instance must not be changed by a handler)."""
    if model is None or not model.model_config.get("frozen"):
        return None
    try:
        return model.model_validate({})
    except ValidationError:  # a required parameter: every request validates its own
        return None


def bind(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Wrap a handler: authenticate -> authorize (404/403) -> validate -> handle."""
    scope = scope_of(route.permission)
    for needed in {Scope.ORG: ("{org}",), Scope.PROJECT: ("{org}", "{project}")}.get(scope, ()):
        if needed not in route.path:
            raise ValueError(f"{route.name}: a {scope.value} route needs {needed} in its path")

    default_query = _default_query(route.query)

    async def endpoint(request: web.Request) -> web.StreamResponse:
        core = request.app[CORE]
        principal = None if scope is Scope.PUBLIC else await principal_of(request)
        if principal is None and scope is not Scope.PUBLIC:
            raise Unauthorized("missing bearer token")
        user_id = principal.user_id if principal else None
        match = request.match_info
        access: UserAccess
        if scope is Scope.PROJECT:
            access = await authorize_project(
                core, route.permission, user_id, match["org"], match["project"]
            )
        elif scope is Scope.ORG:
            access = await authorize_org(core, route.permission, user_id, match["org"])
        elif user_id is None:  # public routes: one shared (frozen) anonymous access
            access = ANONYMOUS
        else:  # any-user routes need no database lookup
            access = UserAccess(user_id)
        call = Call(request, core, principal, access)
        if route.query is not None:
            if default_query is not None and not request.query_string:
                call.query = default_query
            else:
                call.query = parse_query(route.query, request)
        if route.body is not None:
            call.body = await parse_model(request, route.body, core.settings.max_body_bytes)
        return await route.handler(call)

    endpoint.__name__ = route.name
    return endpoint


#: Copied by each Response (never shared): cheaper than `content_type=`, which builds the
#: header map and then sets the field (~1 µs a response, docs/read-path.md).
JSON_HEADERS: CIMultiDict[str] = CIMultiDict({"Content-Type": "application/json"})


def json_body(body: bytes, status: int = 200) -> web.Response:
    """A response of JSON already encoded."""
    return web.Response(body=body, status=status, headers=JSON_HEADERS)


def json_response(
    value: BaseModel | dict[str, Any] | list[Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Serialize a model (pydantic's fast JSON) or plain data."""
    if isinstance(value, BaseModel):
        body = value.model_dump_json().encode()
    else:
        body = json.dumps(value, allow_nan=False, ensure_ascii=False).encode()
    if headers is None:
        return json_body(body, status)
    return web.Response(body=body, status=status, content_type="application/json", headers=headers)


@dataclass
class RouteTable:
    """The app's joined routes (kept in the app state, so the docs handler reads them
    without importing routes.py); the OpenAPI document is built once, on first use."""

    routes: tuple[Route, ...]
    _openapi: bytes | None = None

    def openapi(self) -> bytes:
        if self._openapi is None:
            from tracker.http.openapi import build_openapi

            self._openapi = json.dumps(build_openapi(list(self.routes))).encode()
        return self._openapi


ROUTE_TABLE = web.AppKey("route_table", RouteTable)
