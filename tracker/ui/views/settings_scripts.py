"""Project settings for admins: automation scripts (list, create, edit, enable/disable, preview).

The same service calls as `/api/v1/.../scripts`: `create_script` compiles the source
(a 422 names the line), `update_script` takes the page's version as If-Match (412 when
someone saved in between), and the preview is the API's dry run (rolled back).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracker.domain.models.comments import SubListQuery
from tracker.domain.models.scripts import Preview, RunIn, ScriptIn, ScriptPatch
from tracker.domain.permissions import Permission
from tracker.services import previews, scripts
from tracker.ui.app import Ctx, page, parse_form, redirect

SCRIPTS = "/o/{org}/p/{project}/settings/scripts"
EXAMPLE = """-- docs/scripting.md: on_event(name, fn), on_manual(fn), on_schedule(cron, fn)
on_manual(function(ctx)
  log("hello from a manual run")
end)
"""


def _base(ctx: Ctx) -> str:
    return f"/o/{ctx.access.org.slug}/p/{ctx.access.project.key}/settings/scripts"


@page(Permission.SCRIPTS_MANAGE)
async def scripts_page(ctx: Ctx) -> web.StreamResponse:
    listed = await scripts.list_scripts(ctx.core, ctx.access, SubListQuery(limit=200))
    return ctx.render("scripts.html", scripts=listed.items, base=_base(ctx), example=EXAMPLE)


@page(Permission.SCRIPTS_MANAGE)
async def create_script(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    data = parse_form(ScriptIn, {"name": form.get("name", "").strip(),
                                 "source": form.get("source", ""),
                                 "description": form.get("description", ""),
                                 "enabled": form.get("enabled") == "1"})  # fmt: skip
    script = await scripts.create_script(ctx.core, ctx.access, data, ctx.actor)
    return redirect(f"{_base(ctx)}/{script.id}")


async def _script_page(ctx: Ctx, preview: Preview | None = None, issue: str = "") -> Any:
    script_id = ctx.params["script"]
    script = await scripts.get_script(ctx.core, ctx.access, script_id)
    runs = await scripts.list_runs(ctx.core, ctx.access, script_id, SubListQuery(limit=20))
    manual = any(t.kind == "manual" for t in script.triggers)
    return ctx.render("script.html", script=script, runs=runs.items, base=_base(ctx),
                      manual=manual, preview=preview, issue=issue)  # fmt: skip


@page(Permission.SCRIPTS_MANAGE)
async def script_page(ctx: Ctx) -> web.StreamResponse:
    return await _script_page(ctx)


@page(Permission.SCRIPTS_MANAGE)
async def update_script(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    values: dict[str, Any] = {"enabled": form.get("enabled") == "1"}
    if "source" in form:  # the edit form; the enable/disable button sends only `enabled`
        values |= {"name": form.get("name", "").strip(), "source": form["source"],
                   "description": form.get("description", "")}  # fmt: skip
    version = form.get("version", "")
    await scripts.update_script(ctx.core, ctx.access, ctx.params["script"],
                                parse_form(ScriptPatch, values), ctx.actor,
                                f'"{version}"' if version.isdigit() else None)  # fmt: skip
    return redirect(f"{_base(ctx)}/{ctx.params['script']}")


@page(Permission.SCRIPTS_MANAGE)
async def preview_script(ctx: Ctx) -> web.StreamResponse:
    form = await ctx.form()
    issue = form.get("issue", "").strip().upper()
    body = parse_form(RunIn, {"issue": issue} if issue else {})
    preview = await previews.dry_run_script(ctx.core, ctx.access, ctx.params["script"], body,
                                            ctx.actor)  # fmt: skip
    return await _script_page(ctx, preview, issue)


ROUTES = [
    ("GET", SCRIPTS, scripts_page),
    ("POST", SCRIPTS, create_script),
    ("GET", SCRIPTS + "/{script}", script_page),
    ("POST", SCRIPTS + "/{script}", update_script),
    ("POST", SCRIPTS + "/{script}/preview", preview_script),
]
