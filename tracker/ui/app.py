"""The page wrapper and `setup_ui`: every UI route goes through `page(permission)`.

The wrapper does for a page what `tracker.http.binding.bind` does for an API route:
the person from the session cookies (renewing tokens when needed), the CSRF check on
every state-changing request, then the same typed access built by the same
`authorize_org`/`authorize_project` with the route's permission. Errors become an HTML
page with the error's status (or problem JSON for the board's script). Every response
gets the security headers (CSP without inline scripts, nosniff, referrer policy,
frame-ancestors 'none').
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web
from pydantic import BaseModel, ValidationError

from tracker.domain.changes import Actor, Origin
from tracker.domain.permissions import Permission, Scope, holds, scope_of
from tracker.errors import RhythmError, ValidationFailed
from tracker.services.access import (
    OrgAccess,
    ProjectAccess,
    UserAccess,
    authorize_org,
    authorize_project,
)
from tracker.services.accounts import Principal
from tracker.services.runtime import Core
from tracker.ui.assets import Assets
from tracker.ui.markdown import render_markdown
from tracker.ui.session import (
    CSRF_FIELD,
    Rotations,
    check_csrf,
    csrf_of,
    principal_of,
    set_csrf,
    set_tokens,
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass
class UiState:
    core_of: Callable[[web.Application], Core]
    assets: Assets
    rotations: Rotations = field(default_factory=Rotations)


UI = web.AppKey("ui", UiState)


@dataclass
class Ctx:
    """What a page handler gets: request, core, the person, the CSRF token, typed access."""

    request: web.Request
    core: Core
    principal: Principal | None
    csrf: str
    access: Any  # UserAccess | OrgAccess | ProjectAccess, as the route's scope guarantees

    @property
    def actor(self) -> Actor:
        return Actor(self.principal.user_id if self.principal else None, Origin.API)

    @property
    def params(self) -> dict[str, str]:
        return dict(self.request.match_info)

    def may(self, permission: Permission) -> bool:
        """Whether the caller's roles grant `permission` here (to show or hide a control)."""
        access = self.access
        org_role = access.org.role if isinstance(access, OrgAccess) else None
        project_role = access.project.role if isinstance(access, ProjectAccess) else None
        return holds(permission, org_role, project_role)

    def render(self, template: str, status: int = 200, **values: Any) -> web.Response:
        context = {
            "ctx": self,
            "csrf": self.csrf,
            "csrf_field": CSRF_FIELD,
            "signed_in": self.principal is not None,
            "org": getattr(self.access, "org", None),
            "project": getattr(self.access, "project", None),
            **values,
        }
        response = aiohttp_jinja2.render_template(template, self.request, context)
        response.set_status(status)
        return response

    async def form(self) -> dict[str, str]:
        data = await self.request.post()
        return {k: str(v) for k, v in data.items() if k != CSRF_FIELD}


def parse_form(model: type[BaseModel], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ValidationFailed.from_pydantic(exc, prefix="", whole="form") from None


PageHandler = Callable[[Ctx], Awaitable[web.StreamResponse]]


def wants_json(request: web.Request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def page(permission: Permission) -> Callable[[PageHandler], Callable[..., Any]]:
    """Wrap a page handler: session -> CSRF -> access (404/403) -> handler -> headers."""
    scope = scope_of(permission)

    def wrap(fn: PageHandler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handler(request: web.Request) -> web.StreamResponse:
            state = request.app[UI]
            core = state.core_of(request.app)
            csrf, new_csrf = csrf_of(request)
            pair = None
            ctx = Ctx(request, core, None, csrf, UserAccess(None))
            response: web.StreamResponse
            try:
                ctx.principal, pair = await principal_of(request, core, state.rotations)
                if request.method not in SAFE_METHODS:
                    await check_csrf(request)
                if ctx.principal is None and scope is not Scope.PUBLIC:
                    raise Redirect("/login?next=" + quote(request.path_qs, safe="/"))
                user_id = ctx.principal.user_id if ctx.principal else None
                match = request.match_info
                if scope is Scope.PROJECT:
                    ctx.access = await authorize_project(
                        core, permission, user_id, match["org"], match["project"]
                    )
                elif scope is Scope.ORG:
                    ctx.access = await authorize_org(core, permission, user_id, match["org"])
                else:
                    ctx.access = UserAccess(user_id)
                response = await fn(ctx)
            except Redirect as to:
                response = redirect(to.location)
            except RhythmError as error:
                response = error_response(ctx, error)
            if pair is not None:
                set_tokens(request, response, pair, core.settings.refresh_token_ttl)
            if new_csrf:
                set_csrf(request, response, csrf)
            for name, value in SECURITY_HEADERS.items():  # a file keeps its stricter sandbox
                response.headers.setdefault(name, value)
            return response

        handler.__name__ = fn.__name__
        return handler

    return wrap


def error_response(ctx: Ctx, error: RhythmError) -> web.StreamResponse:
    if wants_json(ctx.request):
        return web.json_response(error.to_problem(), status=error.status)
    return ctx.render("error.html", status=error.status, error=error)


class Redirect(Exception):
    """Raised to send the browser elsewhere (sign-in) before any handler runs."""

    def __init__(self, location: str) -> None:
        self.location = location


def redirect(location: str) -> web.Response:
    """303 See Other to a local `location` (a returned response, as aiohttp wants)."""
    return web.Response(status=303, headers={"Location": location})


def ui_routes() -> set[tuple[str, str]]:
    """(method, path) of every route `setup_ui` adds (for the served-routes meta test)."""
    from tracker.ui.views import all_routes

    return {(method, path) for method, path, _ in all_routes()} | {("GET", STATIC_PATH)}


STATIC_PATH = "/static/{digest}/{name}"


def setup_ui(app: web.Application, core_of: Callable[[web.Application], Core]) -> None:
    """Add the UI's routes, templates and static files to `app` (mounted at `/`)."""
    from tracker.ui.views import all_routes

    assets = Assets()
    app[UI] = UiState(core_of, assets)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # package data: no stat() of every template on every page
    )
    env.globals.update(asset=assets.url, markdown=render_markdown)
    app.router.add_get(STATIC_PATH.replace("{name}", "{name:.+}"), assets.serve)
    for method, path, handler in all_routes():
        app.router.add_route(method, path, handler)
