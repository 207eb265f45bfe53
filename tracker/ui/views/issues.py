"""The issue page (fields editable per role, markdown, comments, history) and create."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.comments import CommentIn, SubListQuery
from tracker.domain.models.issues import IssueCreate, IssuePatch, PageQuery
from tracker.domain.permissions import Permission
from tracker.errors import ValidationFailed
from tracker.services import assignees, attachments, comments, history, issues, search, workflow
from tracker.ui.app import Ctx, page, parse_form, redirect
from tracker.ui.views.issue_extras import extras, issue_number

ISSUE = "/o/{org}/p/{project}/issues/{number}"
TYPES = ["task", "bug", "feature", "improvement", "story", "epic"]
PRIORITIES = ["critical", "major", "normal", "minor"]


_number = issue_number


def _url(ctx: Ctx, number: int) -> str:
    return f"/o/{ctx.access.org.slug}/p/{ctx.access.project.key}/issues/{number}"


@page(Permission.ISSUE_CREATE)
async def new_issue_form(ctx: Ctx) -> web.StreamResponse:
    stages = await workflow.list_stages(ctx.core, ctx.access)
    return ctx.render("issue_new.html", stages=stages, types=TYPES, priorities=PRIORITIES)


@page(Permission.ISSUE_CREATE)
async def create_issue(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    values = {k: form[k] for k in ("title", "description", "type", "priority", "status")
              if form.get(k)}  # fmt: skip
    issue = await issues.create_issue(
        ctx.core, ctx.access, parse_form(IssueCreate, values), ctx.actor
    )
    return redirect(_url(ctx, issue.number))


@page(Permission.PROJECT_READ)
async def issue_page(ctx: Ctx) -> web.StreamResponse:
    number = _number(ctx)
    issue = await issues.get_issue(ctx.core, ctx.access, number)
    listed = await comments.list_comments(ctx.core, ctx.access, number, SubListQuery(limit=200))
    changes = await history.issue_history(ctx.core, ctx.access, number, PageQuery(limit=50))
    stages = await workflow.list_stages(ctx.core, ctx.access)
    people = await assignees.list_assignees(ctx.core, ctx.access, number)
    files = await attachments.list_attachments(ctx.core, ctx.access, number)
    may_update = ctx.may(Permission.ISSUE_UPDATE)
    own = ctx.principal is not None and issue.reporter == ctx.principal.user_id
    return ctx.render(
        "issue.html",
        issue=issue,
        comments=listed.items,
        files=files,
        history=changes.items,
        people=people,
        stages=stages,
        types=TYPES,
        priorities=PRIORITIES,
        may_update=may_update,
        # reporters may edit the title and description of their own issues (the service's rule)
        may_edit_text=may_update or (own and ctx.may(Permission.ISSUE_CREATE)),
        may_comment=ctx.may(Permission.COMMENT_CREATE),
        **await extras(ctx, issue),
    )


@page(Permission.ISSUE_CREATE)  # the API's PATCH permission; the service checks the rest
async def update_issue(ctx: Ctx) -> web.StreamResponse:
    number = _number(ctx)
    form = await ctx.form()
    values: dict[str, object] = {
        k: form[k] for k in ("title", "description", "type", "priority", "status") if k in form
    }
    if "tags" in form:
        values["tags"] = [t.strip() for t in form["tags"].split(",") if t.strip()]
    if "assignees" in form:
        values["assignees"] = await _user_ids(ctx, form["assignees"])
    version = form.get("version")
    await issues.update_issue(ctx.core, ctx.access, number, parse_form(IssuePatch, values),
                              ctx.actor, f'"{version}"' if version else None)  # fmt: skip
    return redirect(_url(ctx, number))


async def _user_ids(ctx: Ctx, text: str) -> list[str]:
    """Comma-separated emails -> user ids (the same lookup as the query language's)."""
    emails = [e.strip().lower() for e in text.split(",") if e.strip()]
    found = await search.resolve_emails(ctx.core, set(emails))
    missing = [e for e in emails if e not in found]
    if missing:
        raise ValidationFailed([("assignees", f"no account for {', '.join(missing)}")])
    return list(dict.fromkeys(found[e] for e in emails))


@page(Permission.COMMENT_CREATE)
async def add_comment(ctx: Ctx) -> web.StreamResponse:
    number = _number(ctx)
    form = await ctx.form()
    body = parse_form(CommentIn, {"body": form.get("body", "")})
    await comments.create_comment(ctx.core, ctx.access, number, body, ctx.actor)
    return redirect(_url(ctx, number) + "#comments")


ROUTES = [
    ("GET", "/o/{org}/p/{project}/issues/new", new_issue_form),
    ("POST", "/o/{org}/p/{project}/issues", create_issue),
    ("GET", ISSUE, issue_page),
    ("POST", ISSUE, update_issue),
    ("POST", ISSUE + "/comments", add_comment),
]
