"""Project settings: members and roles, stages, transition rules, custom fields (admins
change them; everyone who reads the project sees them). The same services as the API."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.orgs import ListQuery, ProjectMemberIn, ProjectMemberPatch
from tracker.domain.models.workflow import StageIn, StagePatch
from tracker.domain.permissions import Permission
from tracker.services import custom_fields, members, workflow
from tracker.ui.app import Ctx, page, parse_form, redirect
from tracker.ui.views.settings_workflow import FIELD_TYPES

SETTINGS = "/o/{org}/p/{project}/settings"
ROLES = ["viewer", "reporter", "developer", "admin"]
CATEGORIES = ["todo", "in_progress", "done"]


def _url(ctx: Ctx) -> str:
    return f"/o/{ctx.access.org.slug}/p/{ctx.access.project.key}/settings"


@page(Permission.PROJECT_READ)
async def settings_page(ctx: Ctx) -> web.StreamResponse:
    listed = await members.list_project_members(ctx.core, ctx.access, ListQuery(limit=200))
    stages = await workflow.list_stages(ctx.core, ctx.access)
    rules = (await workflow.get_transitions(ctx.core, ctx.access)).rules
    fields = await custom_fields.list_fields(ctx.core, ctx.access)
    return ctx.render(
        "settings.html", members=listed.items, stages=stages, roles=ROLES,
        categories=CATEGORIES, may_members=ctx.may(Permission.MEMBERS_MANAGE),
        may_workflow=ctx.may(Permission.WORKFLOW_MANAGE), rules=rules,
        stage_names={s.id: s.name for s in stages}, fields=fields, field_types=FIELD_TYPES,
        may_fields=ctx.may(Permission.FIELDS_MANAGE),
        may_scripts=ctx.may(Permission.SCRIPTS_MANAGE),
        may_webhooks=ctx.may(Permission.WEBHOOKS_MANAGE),
    )  # fmt: skip


@page(Permission.MEMBERS_MANAGE)
async def add_member(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    data = parse_form(ProjectMemberIn, {"email": form.get("email", "").strip().lower(),
                                        "role": form.get("role", "reporter")})  # fmt: skip
    await members.add_project_member(ctx.core, ctx.access, data, ctx.actor)
    return redirect(_url(ctx))


@page(Permission.MEMBERS_MANAGE)
async def change_member(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    user_id = ctx.params["user"]
    if form.get("remove"):
        await members.remove_project_member(ctx.core, ctx.access, user_id, ctx.actor)
    else:
        data = parse_form(ProjectMemberPatch, {"role": form.get("role", "")})
        await members.change_project_role(ctx.core, ctx.access, user_id, data, ctx.actor)
    return redirect(_url(ctx))


@page(Permission.WORKFLOW_MANAGE)
async def add_stage(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    data = parse_form(StageIn, {"name": form.get("name", ""), "category": form.get("category")})
    await workflow.create_stage(ctx.core, ctx.access, data, ctx.actor)
    return redirect(_url(ctx))


@page(Permission.WORKFLOW_MANAGE)
async def change_stage(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    stage_id = ctx.params["stage"]
    if form.get("delete"):
        move_to = form.get("move_to") or None
        await workflow.delete_stage(ctx.core, ctx.access, stage_id, move_to, ctx.actor)
    else:
        values = {k: form[k] for k in ("name", "category") if form.get(k)}
        await workflow.update_stage(ctx.core, ctx.access, stage_id,
                                    parse_form(StagePatch, values), ctx.actor)  # fmt: skip
    return redirect(_url(ctx))


ROUTES = [
    ("GET", SETTINGS, settings_page),
    ("POST", SETTINGS + "/members", add_member),
    ("POST", SETTINGS + "/members/{user}", change_member),
    ("POST", SETTINGS + "/stages", add_stage),
    ("POST", SETTINGS + "/stages/{stage}", change_stage),
]
