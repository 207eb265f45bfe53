"""Webhooks of a project (project admins): CRUD, ping, the delivery log, redeliver."""

from __future__ import annotations

from aiohttp import web

from tracker.domain.models.base import Page
from tracker.domain.models.issues import PageQuery
from tracker.domain.models.webhooks import (
    Delivery,
    DeliverySummary,
    Webhook,
    WebhookCreated,
    WebhookIn,
    WebhookPatch,
)
from tracker.domain.permissions import Permission
from tracker.http.binding import Call, Route, json_response
from tracker.services import webhooks
from tracker.services.access import ProjectAccess

HOOKS = "/orgs/{org}/projects/{project}/webhooks"
HOOK = HOOKS + "/{webhook_id}"
DELIVERY = HOOK + "/deliveries/{delivery_id}"
MANAGE = Permission.WEBHOOKS_MANAGE


async def create_webhook(call: Call[ProjectAccess]) -> web.Response:
    hook = await webhooks.create_webhook(call.core, call.access, call.body, call.actor)
    return json_response(hook, status=201)


async def list_webhooks(call: Call[ProjectAccess]) -> web.Response:
    return json_response(await webhooks.list_webhooks(call.core, call.access, call.query))


async def get_webhook(call: Call[ProjectAccess]) -> web.Response:
    hook_id = call.params["webhook_id"]
    return json_response(await webhooks.get_webhook(call.core, call.access, hook_id))


async def update_webhook(call: Call[ProjectAccess]) -> web.Response:
    hook = await webhooks.update_webhook(
        call.core, call.access, call.params["webhook_id"], call.body, call.actor
    )
    return json_response(hook)


async def delete_webhook(call: Call[ProjectAccess]) -> web.Response:
    await webhooks.delete_webhook(call.core, call.access, call.params["webhook_id"], call.actor)
    return web.Response(status=204)


async def ping(call: Call[ProjectAccess]) -> web.Response:
    delivery = await webhooks.ping(call.core, call.access, call.params["webhook_id"])
    return json_response(delivery, status=202)


async def list_deliveries(call: Call[ProjectAccess]) -> web.Response:
    page = await webhooks.list_deliveries(
        call.core, call.access, call.params["webhook_id"], call.query
    )
    return json_response(page)


async def get_delivery(call: Call[ProjectAccess]) -> web.Response:
    delivery = await webhooks.get_delivery(
        call.core, call.access, call.params["webhook_id"], call.params["delivery_id"]
    )
    return json_response(delivery)


async def redeliver(call: Call[ProjectAccess]) -> web.Response:
    delivery = await webhooks.redeliver(
        call.core, call.access, call.params["webhook_id"], call.params["delivery_id"]
    )
    return json_response(delivery, status=202)


ROUTES = [
    Route("GET", HOOKS, list_webhooks, MANAGE, "The project's webhooks", query=PageQuery,
          response=Page[Webhook], tag="webhooks"),
    Route("POST", HOOKS, create_webhook, MANAGE,
          "Register a webhook (the secret, generated when none is given, is shown once)",
          body=WebhookIn, response=WebhookCreated, status=201, tag="webhooks"),
    Route("GET", HOOK, get_webhook, MANAGE, "One webhook", response=Webhook, tag="webhooks"),
    Route("PATCH", HOOK, update_webhook, MANAGE, "Change a webhook (url, events, enabled, secret)",
          body=WebhookPatch, response=Webhook, tag="webhooks"),
    Route("DELETE", HOOK, delete_webhook, MANAGE, "Delete a webhook and its delivery log",
          status=204, tag="webhooks"),
    Route("POST", HOOK + "/ping", ping, MANAGE, "Queue a ping delivery (once per 10 s)",
          response=DeliverySummary, status=202, errors=(429,), tag="webhooks"),
    Route("GET", HOOK + "/deliveries", list_deliveries, MANAGE,
          "The webhook's deliveries, newest first", query=PageQuery,
          response=Page[DeliverySummary], tag="webhooks"),
    Route("GET", DELIVERY, get_delivery, MANAGE,
          "One delivery: request, response head, attempts, next attempt",
          response=Delivery, tag="webhooks"),
    Route("POST", DELIVERY + "/redeliver", redeliver, MANAGE,
          "Send a settled delivery again (same delivery id)", response=DeliverySummary,
          status=202, errors=(409,), tag="webhooks"),
]  # fmt: skip
