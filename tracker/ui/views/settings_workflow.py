"""Project settings: transition rules and custom field definitions (admins change them).

The rule set is the API's whole-set PUT: the page adds or removes one rule by sending
the current set with that change (`workflow.put_transitions`, which checks the stages).
Custom fields go through `custom_fields.create_field/update_field/delete_field`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracker.domain.models.issues import CustomFieldIn, CustomFieldPatch
from tracker.domain.models.workflow import TransitionsIn
from tracker.domain.permissions import Permission
from tracker.services import custom_fields, workflow
from tracker.ui.app import Ctx, page, parse_form, redirect

SETTINGS = "/o/{org}/p/{project}/settings"
FIELD_TYPES = ["text", "number", "date", "enum", "multi_enum", "user"]


def _url(ctx: Ctx, anchor: str) -> str:
    return f"/o/{ctx.access.org.slug}/p/{ctx.access.project.key}/settings#{anchor}"


def _options(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@page(Permission.WORKFLOW_MANAGE)
async def change_transitions(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    current = [r.model_dump() for r in (await workflow.get_transitions(ctx.core, ctx.access)).rules]
    rule = {"from_stage_id": form.get("from_stage_id", ""),
            "to_stage_id": form.get("to_stage_id", "")}  # fmt: skip
    same = [r for r in current if {k: r[k] for k in rule} == rule]
    rest = [r for r in current if r not in same]
    if form.get("remove"):
        rules: list[dict[str, Any]] = rest
    else:
        rules = [*rest, {**rule, "min_role": form.get("min_role", "developer")}]
    data = parse_form(TransitionsIn, {"rules": rules})
    await workflow.put_transitions(ctx.core, ctx.access, data, ctx.actor)
    return redirect(_url(ctx, "transitions"))


@page(Permission.FIELDS_MANAGE)
async def add_field(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    values: dict[str, Any] = {"name": form.get("name", "").strip(), "type": form.get("type", ""),
                              "options": _options(form.get("options", "")),
                              "required": form.get("required") == "1"}  # fmt: skip
    data = parse_form(CustomFieldIn, values)
    await custom_fields.create_field(ctx.core, ctx.access, data, ctx.actor)
    return redirect(_url(ctx, "fields"))


@page(Permission.FIELDS_MANAGE)
async def change_field(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    field_id = ctx.params["field"]
    if form.get("delete"):
        await custom_fields.delete_field(ctx.core, ctx.access, field_id, ctx.actor)
        return redirect(_url(ctx, "fields"))
    values: dict[str, Any] = {"required": form.get("required") == "1"}
    if form.get("name"):
        values["name"] = form["name"].strip()
    if "options" in form:
        values["options"] = _options(form["options"])
    await custom_fields.update_field(ctx.core, ctx.access, field_id,
                                     parse_form(CustomFieldPatch, values), ctx.actor)  # fmt: skip
    return redirect(_url(ctx, "fields"))


ROUTES = [
    ("POST", SETTINGS + "/transitions", change_transitions),
    ("POST", SETTINGS + "/fields", add_field),
    ("POST", SETTINGS + "/fields/{field}", change_field),
]
