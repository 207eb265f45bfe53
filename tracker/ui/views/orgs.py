"""Home (my orgs), an org's projects, creating orgs and projects."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.orgs import ListQuery, OrgIn, ProjectIn, ProjectListQuery
from tracker.domain.permissions import Permission
from tracker.services import orgs, projects
from tracker.ui.app import Ctx, page, parse_form, redirect


@page(Permission.AUTHENTICATED)
async def home(ctx: Ctx) -> web.StreamResponse:
    assert ctx.principal is not None
    mine = await orgs.list_my_orgs(ctx.core, ctx.principal, ListQuery(limit=200))
    return ctx.render("home.html", orgs=mine.items)


@page(Permission.AUTHENTICATED)
async def create_org(ctx: Ctx) -> web.StreamResponse:
    assert ctx.principal is not None
    form = await ctx.form()
    values = {"name": form.get("name", "")}
    if form.get("slug"):
        values["slug"] = form["slug"]
    org = await orgs.create_org(ctx.core, ctx.principal, parse_form(OrgIn, values), ctx.actor)
    return redirect(f"/o/{org.slug}")


@page(Permission.ORG_READ)
async def org_page(ctx: Ctx) -> web.StreamResponse:
    listed = await projects.list_projects(ctx.core, ctx.access, ProjectListQuery(limit=200))
    return ctx.render("org.html", projects=listed.items,
                      may_create=ctx.may(Permission.PROJECT_CREATE))  # fmt: skip


@page(Permission.PROJECT_CREATE)
async def create_project(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    values = {k: form[k] for k in ("name", "key", "description", "visibility") if form.get(k)}
    project = await projects.create_project(
        ctx.core, ctx.access, parse_form(ProjectIn, values), ctx.actor
    )
    return redirect(f"/o/{ctx.access.org.slug}/p/{project.key}")


ROUTES = [
    ("GET", "/", home),
    ("POST", "/orgs", create_org),
    ("GET", "/o/{org}", org_page),
    ("POST", "/o/{org}/projects", create_project),
]
