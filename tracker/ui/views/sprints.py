"""Backlog and sprints: the ranked backlog, sprints with start/complete, a burndown chart."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.workflow import (
    BacklogQuery,
    Burndown,
    SprintComplete,
    SprintIn,
    SprintQuery,
)
from tracker.domain.permissions import Permission
from tracker.services import boards, sprints
from tracker.ui.app import Ctx, page, parse_form, redirect

BACKLOG = "/o/{org}/p/{project}/backlog"
CHART_W, CHART_H = 320, 120


def chart_points(burndown: Burndown) -> str:
    """The remaining-issues line of a burndown as SVG polyline points (no script needed)."""
    days = [d.remaining_issues for d in burndown.days]
    known = [d for d in days if d is not None]
    if not known:
        return ""
    top = max(max(known), 1)
    step = CHART_W / max(len(days) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{CHART_H - value * CHART_H / top:.1f}"
        for i, value in enumerate(days)
        if value is not None
    )


def _url(ctx: Ctx) -> str:
    return f"/o/{ctx.access.org.slug}/p/{ctx.access.project.key}/backlog"


@page(Permission.PROJECT_READ)
async def backlog_page(ctx: Ctx) -> web.StreamResponse:
    items = (await boards.backlog(ctx.core, ctx.access, BacklogQuery(limit=200))).items
    listed = (await sprints.list_sprints(ctx.core, ctx.access, SprintQuery(limit=200))).items
    active = next((s for s in listed if s.state == "active"), None)
    points = ""
    if active is not None:
        points = chart_points(await sprints.sprint_burndown(ctx.core, ctx.access, active.id))
    return ctx.render(
        "backlog.html", backlog=items, sprints=listed, active=active, points=points,
        chart=(CHART_W, CHART_H), may_edit=ctx.may(Permission.SPRINT_EDIT),
        may_run=ctx.may(Permission.SPRINT_RUN),
    )  # fmt: skip


@page(Permission.SPRINT_EDIT)
async def create_sprint(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    values = {k: form[k] for k in ("name", "goal", "starts_at", "ends_at") if form.get(k)}
    await sprints.create_sprint(ctx.core, ctx.access, parse_form(SprintIn, values), ctx.actor)
    return redirect(_url(ctx))


@page(Permission.SPRINT_RUN)
async def start_sprint(ctx: Ctx) -> web.StreamResponse:
    await sprints.start_sprint(ctx.core, ctx.access, ctx.params["sprint"], ctx.actor)
    return redirect(_url(ctx))


@page(Permission.SPRINT_RUN)
async def complete_sprint(ctx: Ctx) -> web.StreamResponse:
    await sprints.complete_sprint(ctx.core, ctx.access, ctx.params["sprint"],
                                  SprintComplete(), ctx.actor)  # fmt: skip
    return redirect(_url(ctx))


ROUTES = [
    ("GET", BACKLOG, backlog_page),
    ("POST", "/o/{org}/p/{project}/sprints", create_sprint),
    ("POST", "/o/{org}/p/{project}/sprints/{sprint}/start", start_sprint),
    ("POST", "/o/{org}/p/{project}/sprints/{sprint}/complete", complete_sprint),
]
