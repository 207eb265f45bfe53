"""The project board and the card move (the same `update_issue` call as the API's PATCH)."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.issues import IssuePatch
from tracker.domain.models.workflow import BoardQuery
from tracker.domain.permissions import Permission
from tracker.errors import QuerySyntaxError, ValidationFailed
from tracker.services import boards, issues
from tracker.ui.app import Ctx, page, parse_form


@page(Permission.PROJECT_READ)
async def board_page(ctx: Ctx) -> web.StreamResponse:
    q = ctx.request.query.get("q", "")
    query = parse_form(BoardQuery, {"q": q or None, "limit": 50})
    try:
        board = await boards.project_board(ctx.core, ctx.access, query)
        fault = None
    except QuerySyntaxError as error:
        board, fault = None, error
    return ctx.render(
        "board.html",
        status=400 if fault else 200,
        board=board,
        q=q,
        fault=fault,
        may_move=ctx.may(Permission.ISSUE_UPDATE),
        may_create=ctx.may(Permission.ISSUE_CREATE),
    )


@page(Permission.ISSUE_CREATE)  # the API's PATCH permission; the service checks the rest
async def move_card(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    try:
        number = int(form.get("issue", ""))
        values: dict[str, object] = {"status": form.get("status", "")}
        for side in ("before", "after"):
            if form.get(side):
                values[side] = int(form[side])
    except ValueError:
        raise ValidationFailed([("issue", "issue, before and after are issue numbers")]) from None
    patch = parse_form(IssuePatch, values)
    issue = await issues.update_issue(ctx.core, ctx.access, number, patch, ctx.actor)
    return web.json_response({"key": issue.key, "status": issue.status})


ROUTES = [
    ("GET", "/o/{org}/p/{project}", board_page),
    ("POST", "/o/{org}/p/{project}/move", move_card),
]
