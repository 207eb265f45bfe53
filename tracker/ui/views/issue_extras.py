"""The issue page's other parts: relations, sub-issues, time log, custom fields, watching.

Each form posts to a small handler that calls the API's own service function with the
API route's permission (`create_relation`, `create_issue` with a parent, `log_time`,
`update_issue` with `custom_fields`, `set_my_watch`); the services keep every rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tracker.domain.custom_fields import FieldDef, from_text
from tracker.domain.models.comments import INVERSE, RelationIn, SubListQuery, TimeEntryIn
from tracker.domain.models.issues import CustomField, Issue, IssueCreate, IssuePatch
from tracker.domain.permissions import Permission
from tracker.errors import NotFound, QuerySyntaxError, ValidationFailed
from tracker.services import (
    accounts,
    custom_fields,
    issues,
    relations,
    search,
    time_entries,
    watchers,
)
from tracker.ui.app import Ctx, page, parse_form, redirect

ISSUE = "/o/{org}/p/{project}/issues/{number}"
RELATION_TYPES = ["relates_to", *(t for t in INVERSE if t != "relates_to")]  # the domain's names
MAX_CHILDREN = 100


@dataclass(frozen=True)
class FieldView:
    """A custom field as the page edits it: its definition and the value as form text."""

    field: CustomField
    value: Any  # the stored value (list for multi_enum)
    text: str  # what the input shows (a user's email for `user` fields)


async def extras(ctx: Ctx, issue: Issue) -> dict[str, Any]:
    """The values the issue page's extra parts render (one service call each)."""
    number = issue.number
    linked = await relations.list_relations(ctx.core, ctx.access, number,
                                            SubListQuery(limit=200))  # fmt: skip
    try:
        children = (await search.search_project_issues(
            ctx.core, ctx.access, f"parent:{issue.key} sort:number-asc", limit=MAX_CHILDREN,
            cursor=None, highlight=False,
        )).items  # fmt: skip
    except QuerySyntaxError:  # a key always parses; never let this part break the page
        children = []
    logged = await time_entries.list_time_entries(ctx.core, ctx.access, number,
                                                  SubListQuery(limit=100))  # fmt: skip
    fields = await custom_fields.list_fields(ctx.core, ctx.access)
    user_ids = {e.user_id for e in logged.items}
    user_ids |= {str(issue.custom_fields[f.name]) for f in fields
                 if f.type == "user" and issue.custom_fields.get(f.name)}  # fmt: skip
    people = await accounts.users_named(ctx.core, user_ids)
    watch = None
    if ctx.principal is not None:
        watch = await watchers.my_watch(ctx.core, ctx.access, number, ctx.principal.user_id)
    return {
        "relations": linked.items,
        "relation_types": RELATION_TYPES,
        "children": children,
        "time": logged,
        "fields": [_field_view(f, issue.custom_fields.get(f.name), people) for f in fields],
        "people_by_id": {k: v.display_name or v.email for k, v in people.items()},
        "watch": watch,
        "may_relate": ctx.may(Permission.ISSUE_UPDATE),
        "may_log": ctx.may(Permission.TIME_LOG),
        "may_child": ctx.may(Permission.ISSUE_CREATE),
    }


def _field_view(field: CustomField, value: Any, people: dict[str, Any]) -> FieldView:
    if value is None:
        text = ""
    elif field.type == "user":
        user = people.get(str(value))
        text = user.email if user else str(value)
    elif field.type == "multi_enum":
        text = ", ".join(value)
    else:
        text = str(value)
    return FieldView(field, value, text)


def issue_number(ctx: Ctx) -> int:
    """The URL's issue number; anything else is the same 404 as a missing issue."""
    text = ctx.params["number"]
    if not text.isdigit() or len(text) > 12:
        raise NotFound("issue not found")
    return int(text)


def _url(ctx: Ctx, number: int, part: str = "") -> str:
    project = ctx.access.project
    return f"/o/{ctx.access.org.slug}/p/{project.key}/issues/{number}{part}"


@page(Permission.ISSUE_UPDATE)
async def add_relation(ctx: Ctx) -> web.StreamResponse:
    number = issue_number(ctx)
    form = await ctx.form()
    other = form.get("issue", "").strip().upper()
    data = parse_form(RelationIn, {"type": form.get("type", ""),
                                   "issue": int(other) if other.isdigit() else other})  # fmt: skip
    await relations.create_relation(ctx.core, ctx.access, number, data, ctx.actor)
    return redirect(_url(ctx, number, "#relations"))


@page(Permission.ISSUE_UPDATE)
async def remove_relation(ctx: Ctx) -> web.StreamResponse:
    number = issue_number(ctx)
    await relations.delete_relation(ctx.core, ctx.access, number, ctx.params["relation_id"],
                                    ctx.actor)  # fmt: skip
    return redirect(_url(ctx, number, "#relations"))


@page(Permission.ISSUE_CREATE)
async def create_child(ctx: Ctx) -> web.StreamResponse:
    number = issue_number(ctx)
    form = await ctx.form()
    values: dict[str, Any] = {k: form[k] for k in ("title", "type") if form.get(k)}
    child = await issues.create_issue(ctx.core, ctx.access,
                                      parse_form(IssueCreate, {**values, "parent": number}),
                                      ctx.actor)  # fmt: skip
    return redirect(_url(ctx, child.number))


@page(Permission.TIME_LOG)
async def log_time(ctx: Ctx) -> web.StreamResponse:
    number = issue_number(ctx)
    form = await ctx.form()
    try:
        hours = int(form.get("hours") or 0)
        minutes = int(form.get("minutes") or 0)
    except ValueError:
        raise ValidationFailed([("seconds_spent", "hours and minutes are whole numbers")]) from None
    if not (0 <= hours <= 10_000 and 0 <= minutes <= 600_000):
        raise ValidationFailed([("seconds_spent", "hours and minutes out of range")])
    values: dict[str, Any] = {"seconds_spent": hours * 3600 + minutes * 60,
                              "description": form.get("description", "")}  # fmt: skip
    if form.get("logged_on"):  # a date input; the service checks its range
        try:
            values["logged_at"] = datetime.fromisoformat(form["logged_on"]).replace(tzinfo=UTC)
        except ValueError:
            raise ValidationFailed([("logged_at", "a date such as 2026-01-31")]) from None
    await time_entries.log_time(ctx.core, ctx.access, number,
                                parse_form(TimeEntryIn, values), ctx.actor)  # fmt: skip
    return redirect(_url(ctx, number, "#time"))


@page(Permission.ISSUE_CREATE)  # the API's PATCH permission; the service checks the rest
async def set_field(ctx: Ctx) -> web.StreamResponse:
    number = issue_number(ctx)
    data = await ctx.request.post()
    name = str(data.get("field", ""))
    fields = {f.name: f for f in await custom_fields.list_fields(ctx.core, ctx.access)}
    field = fields.get(name)
    if field is None:
        raise ValidationFailed([(f"custom_fields.{name}", "no such field in this project")])
    if field.type == "multi_enum":  # one checkbox per option
        text = ",".join(str(v) for v in data.getall("value", []))
    else:
        text = str(data.get("value", "")).strip()
    if field.type == "user" and text:
        found = await search.resolve_emails(ctx.core, {text.lower()})
        if text.lower() not in found:
            raise ValidationFailed([(f"custom_fields.{name}", f"no account for {text}")])
        text = found[text.lower()]
    definition = FieldDef(field.id, field.name, field.type, tuple(field.options), field.required)
    value = from_text([definition], {field.name: text})
    version = str(data.get("version", ""))
    await issues.update_issue(ctx.core, ctx.access, number,
                              parse_form(IssuePatch, {"custom_fields": value}), ctx.actor,
                              f'"{version}"' if version.isdigit() else None)  # fmt: skip
    return redirect(_url(ctx, number, "#fields"))


@page(Permission.PROJECT_READ)  # as the API's PUT/DELETE .../watchers/me
async def set_watch(ctx: Ctx) -> web.StreamResponse:
    number = issue_number(ctx)
    form = await ctx.form()
    await watchers.set_my_watch(ctx.core, ctx.access, number, ctx.actor,
                                form.get("watching") == "1")  # fmt: skip
    return redirect(_url(ctx, number))


ROUTES = [
    ("POST", ISSUE + "/relations", add_relation),
    ("POST", ISSUE + "/relations/{relation_id}/delete", remove_relation),
    ("POST", ISSUE + "/children", create_child),
    ("POST", ISSUE + "/time", log_time),
    ("POST", ISSUE + "/fields", set_field),
    ("POST", ISSUE + "/watch", set_watch),
]
