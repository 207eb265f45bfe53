"""Project settings for admins: webhooks (list, create, delete, ping) and their deliveries.

The same service calls as `/api/v1/.../webhooks`: the URL guard, the event names and
the secret (shown once, on the page the create answers with) are the service's.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tracker.domain.events import EVENT_NAMES
from tracker.domain.models.issues import PageQuery
from tracker.domain.models.webhooks import WebhookCreated, WebhookIn
from tracker.domain.permissions import Permission
from tracker.services import webhooks
from tracker.ui.app import Ctx, page, parse_form, redirect

HOOKS = "/o/{org}/p/{project}/settings/webhooks"
EVENTS = ["*", *sorted(EVENT_NAMES)]


def _base(ctx: Ctx) -> str:
    return f"/o/{ctx.access.org.slug}/p/{ctx.access.project.key}/settings/webhooks"


async def _list(ctx: Ctx, created: WebhookCreated | None = None, status: int = 200) -> Any:
    listed = await webhooks.list_webhooks(ctx.core, ctx.access, PageQuery(limit=200))
    return ctx.render("webhooks.html", status=status, hooks=listed.items, base=_base(ctx),
                      events=EVENTS, created=created)  # fmt: skip


@page(Permission.WEBHOOKS_MANAGE)
async def webhooks_page(ctx: Ctx) -> web.StreamResponse:
    return await _list(ctx)


@page(Permission.WEBHOOKS_MANAGE)
async def create_webhook(ctx: Ctx) -> web.StreamResponse:
    data = await ctx.request.post()
    values: dict[str, Any] = {"url": str(data.get("url", "")).strip(),
                              "events": [str(e) for e in data.getall("events", [])] or ["*"],
                              "enabled": True}  # fmt: skip
    if data.get("secret"):
        values["secret"] = str(data["secret"])
    hook = await webhooks.create_webhook(ctx.core, ctx.access, parse_form(WebhookIn, values),
                                         ctx.actor)  # fmt: skip
    return await _list(ctx, created=hook, status=201)  # the only page that shows the secret


@page(Permission.WEBHOOKS_MANAGE)
async def delete_webhook(ctx: Ctx) -> web.StreamResponse:
    await webhooks.delete_webhook(ctx.core, ctx.access, ctx.params["hook"], ctx.actor)
    return redirect(_base(ctx))


@page(Permission.WEBHOOKS_MANAGE)
async def ping_webhook(ctx: Ctx) -> web.StreamResponse:
    await webhooks.ping(ctx.core, ctx.access, ctx.params["hook"])
    return redirect(f"{_base(ctx)}/{ctx.params['hook']}")


@page(Permission.WEBHOOKS_MANAGE)
async def deliveries_page(ctx: Ctx) -> web.StreamResponse:
    hook_id = ctx.params["hook"]
    hook = await webhooks.get_webhook(ctx.core, ctx.access, hook_id)
    listed = await webhooks.list_deliveries(ctx.core, ctx.access, hook_id, PageQuery(limit=100))
    return ctx.render("deliveries.html", hook=hook, deliveries=listed.items, base=_base(ctx))


ROUTES = [
    ("GET", HOOKS, webhooks_page),
    ("POST", HOOKS, create_webhook),
    ("GET", HOOKS + "/{hook}", deliveries_page),
    ("POST", HOOKS + "/{hook}/delete", delete_webhook),
    ("POST", HOOKS + "/{hook}/ping", ping_webhook),
]
