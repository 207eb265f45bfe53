"""Sign up, sign in, sign out: the same account services as /api/v1/auth."""

from __future__ import annotations

from aiohttp import web

from tracker.auth.addresses import client_address
from tracker.domain.models.accounts import LoginIn, RegisterIn
from tracker.domain.permissions import Permission
from tracker.errors import RhythmError
from tracker.services import accounts
from tracker.ui.app import Ctx, page, parse_form, redirect
from tracker.ui.session import REFRESH_COOKIE, clear_tokens, set_tokens

PUBLIC = Permission.PUBLIC


def _next(ctx: Ctx) -> str:
    """Where to go after signing in: a local path only (no open redirect)."""
    target = ctx.request.query.get("next", "/")
    # browsers read "/\\host" like "//host": both leave the site
    local = target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target
    return target if local and target.isprintable() else "/"


@page(PUBLIC)
async def login_form(ctx: Ctx) -> web.StreamResponse:
    return ctx.render("login.html", error=None, email="", next=_next(ctx))


@page(PUBLIC)
async def login(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    address = client_address(ctx.request)
    try:
        data = parse_form(LoginIn, {"email": form.get("email", ""),
                                    "password": form.get("password", "")})  # fmt: skip
        pair = await accounts.login(ctx.core, data, address)
    except RhythmError as error:
        return ctx.render("login.html", status=error.status, error=error.detail,
                          email=form.get("email", ""), next=_next(ctx))  # fmt: skip
    response = redirect(_next(ctx))
    set_tokens(ctx.request, response, pair, ctx.core.settings.refresh_token_ttl)
    return response


@page(PUBLIC)
async def signup_form(ctx: Ctx) -> web.StreamResponse:
    return ctx.render("signup.html", error=None, email="", display_name="")


@page(PUBLIC)
async def signup(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    address = client_address(ctx.request)
    try:
        data = parse_form(RegisterIn, {k: form.get(k, "") for k in
                                       ("email", "password", "display_name")})  # fmt: skip
        await accounts.register(ctx.core, data, address)
        pair = await accounts.login(
            ctx.core, LoginIn(email=data.email, password=data.password), address
        )
    except RhythmError as error:
        return ctx.render("signup.html", status=error.status, error=error.detail,
                          email=form.get("email", ""),
                          display_name=form.get("display_name", ""))  # fmt: skip
    response = redirect("/")
    set_tokens(ctx.request, response, pair, ctx.core.settings.refresh_token_ttl)
    return response


@page(PUBLIC)
async def logout(ctx: Ctx) -> web.StreamResponse:
    token = ctx.request.cookies.get(REFRESH_COOKIE)
    if token:
        await accounts.logout(ctx.core, token)  # revokes the whole refresh family
    response = redirect("/login")
    clear_tokens(response)
    return response


ROUTES = [
    ("GET", "/login", login_form),
    ("POST", "/login", login),
    ("GET", "/signup", signup_form),
    ("POST", "/signup", signup),
    ("POST", "/logout", logout),
]
