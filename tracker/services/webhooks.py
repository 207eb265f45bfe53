"""Webhooks of a project (SPEC §8): CRUD, ping, the delivery log, redeliver.

A hook's configuration is project config: creating, changing and deleting one
is recorded in the change log as entity "webhook" (the secret never is, and the
URL is logged as its origin only: paths often carry tokens). Deliveries are
operational records, written by the sender (services/webhook_delivery.py).
The URL passes the SSRF guard here (literal forbidden addresses are a 422) and
again at every send (names are checked at connect time).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from yarl import URL

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.cursors import decode_cursor, encode_cursor
from tracker.domain.ids import is_uuid, iso, new_id, now_iso, utcnow
from tracker.domain.models.base import Page
from tracker.domain.models.issues import PageQuery
from tracker.domain.models.webhooks import (
    Attempt,
    Delivery,
    DeliveryRequest,
    DeliveryResponse,
    DeliverySummary,
    Webhook,
    WebhookCreated,
    WebhookIn,
    WebhookPatch,
)
from tracker.errors import Conflict, NotFound, TooManyRequests, ValidationFailed
from tracker.outbound.webhooks import Refused, check_url
from tracker.services import webhook_delivery
from tracker.services.access import ProjectAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.services.webhook_outcomes import SYSTEM
from tracker.storage import changes as change_sql
from tracker.storage import webhooks as hook_sql

#: A hook may be pinged once per this many seconds (a ping is otherwise a port scanner).
PING_INTERVAL = 10


def _guard(core: Core, url: str) -> str:
    try:
        check_url(url, allow_private=core.settings.webhook_allow_private)
    except Refused as exc:
        raise ValidationFailed([("url", f"{exc.code}: {exc.message}")]) from None
    return url


def _public(hook: dict[str, Any]) -> dict[str, Any]:
    """What the change log holds about a hook: no secret, the URL's origin only."""
    origin = str(URL(hook["url"]).origin())
    return {"id": hook["id"], "url": origin, "events": hook["events"],
            "enabled": hook["enabled"]}  # fmt: skip


def to_webhook(hook: dict[str, Any]) -> Webhook:
    return Webhook(
        id=hook["id"], url=hook["url"], events=hook["events"], enabled=hook["enabled"],
        disabled_reason=hook["disabled_reason"], secret_hint="…" + hook["secret"][-4:],
        created_at=hook["created_at"], updated_at=hook["updated_at"],
    )  # fmt: skip


def _wake(core: Core, org_id: str) -> None:
    service = webhook_delivery.running(core)
    if service is not None:
        service.watch(org_id)
        service.wake(org_id)


async def create_webhook(
    core: Core, access: ProjectAccess, data: WebhookIn, actor: Actor
) -> WebhookCreated:
    """Register a hook; the secret (generated when none is given) is shown this once."""
    project, org_id = access.project, access.org.id
    url = _guard(core, data.url)
    await _mark(core, org_id)
    hook_id = new_id()
    hook = {"id": hook_id, "project_id": project.id, "url": url, "events": data.events,
            "secret": data.secret or secrets.token_urlsafe(32), "enabled": data.enabled,
            "disabled_reason": None}  # fmt: skip

    def work(uow: UnitOfWork) -> dict[str, Any]:
        if hook_sql.hook_count(uow.conn) == 0:  # nothing before now is owed to anyone
            uow.advance_cursor(webhook_delivery.CONSUMER, change_sql.head(uow.conn))
        change = uow.record(Entity.WEBHOOK, hook_id, Op.CREATE, project=project.id,
                            new=_public(hook))  # fmt: skip
        row = {**hook, "since_seq": change.seq, "created_at": uow.at, "updated_at": uow.at}
        hook_sql.insert_hook(uow.conn, row)
        return row

    row = await mutate(core, access, actor, work)
    _wake(core, org_id)
    return WebhookCreated(**to_webhook(row).model_dump(), secret=row["secret"])


async def _mark(core: Core, org_id: str) -> None:
    await asyncio.to_thread(hook_sql.mark_org, core.settings.data_dir, org_id)


async def _hook(core: Core, access: ProjectAccess, hook_id: str) -> dict[str, Any]:
    project = access.project
    if not is_uuid(hook_id):
        raise NotFound("webhook not found")
    hook = await read(core, access, lambda conn: hook_sql.hook(conn, project.id, hook_id))
    if hook is None:
        raise NotFound("webhook not found")
    return hook


async def list_webhooks(core: Core, access: ProjectAccess, query: PageQuery) -> Page[Webhook]:
    project = access.project
    after = decode_cursor(query.cursor, (str,))[0] if query.cursor else None
    rows = await read(
        core,
        access,
        lambda conn: hook_sql.hooks_of_project(conn, project.id, after, query.limit + 1),
    )
    items = [to_webhook(r) for r in rows[: query.limit]]
    more = len(rows) > query.limit
    return Page[Webhook](items=items, next_cursor=encode_cursor([items[-1].id]) if more else None)


async def get_webhook(core: Core, access: ProjectAccess, hook_id: str) -> Webhook:
    return to_webhook(await _hook(core, access, hook_id))


async def update_webhook(
    core: Core, access: ProjectAccess, hook_id: str, data: WebhookPatch, actor: Actor
) -> Webhook:
    """Change url, events, enabled or the secret; re-enabling clears the disabled reason."""
    project, org_id = access.project, access.org.id
    await _hook(core, access, hook_id)
    given = data.model_dump(exclude_unset=True, exclude_none=True)
    if "url" in given:
        _guard(core, given["url"])

    def work(uow: UnitOfWork) -> dict[str, Any]:
        before = hook_sql.hook(uow.conn, project.id, hook_id)
        if before is None:
            raise NotFound("webhook not found")
        values = {**given, "updated_at": uow.at}
        if given.get("enabled"):
            values["disabled_reason"] = None
        hook_sql.update_hook(uow.conn, hook_id, values)
        after = {**before, **values}
        old, new = _public(before), _public(after)
        uow.record_fields(Entity.WEBHOOK, hook_id, project=project.id, before=old, after=new)
        if "secret" in given and given["secret"] != before["secret"]:
            uow.record(Entity.WEBHOOK, hook_id, Op.UPDATE, project=project.id, field="secret")
        return after

    hook = await mutate(core, access, actor, work)
    _wake(core, org_id)
    return to_webhook(hook)


async def delete_webhook(core: Core, access: ProjectAccess, hook_id: str, actor: Actor) -> None:
    """Delete a hook and its delivery log."""
    project, org_id = access.project, access.org.id
    await _hook(core, access, hook_id)

    def work(uow: UnitOfWork) -> int:
        before = hook_sql.hook(uow.conn, project.id, hook_id)
        if before is None:
            raise NotFound("webhook not found")
        hook_sql.delete_hook(uow.conn, hook_id)
        uow.record(Entity.WEBHOOK, hook_id, Op.DELETE, project=project.id, old=_public(before))
        return hook_sql.hook_count(uow.conn)

    if await mutate(core, access, actor, work) == 0:
        await asyncio.to_thread(hook_sql.unmark_org, core.settings.data_dir, org_id)


async def ping(core: Core, access: ProjectAccess, hook_id: str) -> DeliverySummary:
    """Queue a `ping` delivery ahead of the hook's backlog (seq 0); one per PING_INTERVAL."""
    hook, org_id = await _hook(core, access, hook_id), access.org.id
    delivery_id = new_id()
    body = json.dumps({"event": "ping", "hook": {"id": hook["id"], "events": hook["events"]},
                       "at": now_iso()}, separators=(",", ":")).encode()  # fmt: skip
    give_up_at = time.time() + core.settings.webhook_give_up_seconds

    def work(uow: UnitOfWork) -> None:
        last = hook_sql.last_ping_at(uow.conn, hook["id"])
        limit = iso(utcnow() - timedelta(seconds=PING_INTERVAL))
        if last is not None and last > limit:
            raise TooManyRequests("this webhook was pinged moments ago", retry_after=PING_INTERVAL)
        row = (delivery_id, hook["id"], 0, "ping", body, uow.at, give_up_at, time.time())
        hook_sql.insert_deliveries(uow.conn, [row])

    await mutate(core, access, SYSTEM, work)
    _wake(core, org_id)
    return await _summary(core, access, hook["id"], delivery_id)


async def list_deliveries(
    core: Core, access: ProjectAccess, hook_id: str, query: PageQuery
) -> Page[DeliverySummary]:
    """The hook's delivery log, newest first."""
    hook = await _hook(core, access, hook_id)
    before = decode_cursor(query.cursor, (int,))[0] if query.cursor else None
    rows = await read(
        core, access,
        lambda conn: hook_sql.deliveries_of_hook(conn, hook["id"], before, query.limit + 1),
    )  # fmt: skip
    more = len(rows) > query.limit
    cursor = encode_cursor([rows[query.limit - 1]["position"]]) if more else None
    return Page[DeliverySummary](items=[_to_summary(r) for r in rows[: query.limit]],
                                 next_cursor=cursor)  # fmt: skip


async def get_delivery(
    core: Core, access: ProjectAccess, hook_id: str, delivery_id: str
) -> Delivery:
    """One delivery: the request as last sent, the response head, every attempt."""
    hook = await _hook(core, access, hook_id)
    if not is_uuid(delivery_id):
        raise NotFound("delivery not found")

    def fetch(conn: Any) -> tuple[Any, list[Any]]:
        row = hook_sql.delivery(conn, hook["id"], delivery_id)
        return row, ([] if row is None else hook_sql.attempts(conn, delivery_id))

    row, tries = await read(core, access, fetch)
    if row is None:
        raise NotFound("delivery not found")
    return Delivery(
        id=row["id"], event=row["event"], seq=row["seq"], status=row["status"],
        attempts=[Attempt(at=t["at"], status_code=t["status_code"], error=t["error"],
                          duration_ms=t["duration_ms"]) for t in tries],
        next_attempt_at=_when(row["next_attempt_at"]), created_at=row["created_at"],
        request=DeliveryRequest(headers=json.loads(row["request_headers"] or "{}"),
                                body=_text(row["body"])),
        response=DeliveryResponse(status=row["response_status"],
                                  body=_text(row["response_body"])),
    )  # fmt: skip


async def redeliver(
    core: Core, access: ProjectAccess, hook_id: str, delivery_id: str
) -> DeliverySummary:
    """Send a settled delivery again, now, with the same id (409 while it is pending)."""
    hook = await _hook(core, access, hook_id)
    if not is_uuid(delivery_id):
        raise NotFound("delivery not found")
    org_id = access.org.id
    give_up_at = time.time() + core.settings.webhook_give_up_seconds

    def work(uow: UnitOfWork) -> None:
        row = hook_sql.delivery(uow.conn, hook["id"], delivery_id)
        if row is None:
            raise NotFound("delivery not found")
        if row["status"] == "pending":
            raise Conflict("the delivery is still pending")
        hook_sql.requeue(uow.conn, delivery_id, time.time(), give_up_at)

    await mutate(core, access, SYSTEM, work)
    _wake(core, org_id)
    return await _summary(core, access, hook["id"], delivery_id)


async def _summary(
    core: Core, access: ProjectAccess, hook_id: str, delivery_id: str
) -> DeliverySummary:
    row = await read(core, access, lambda conn: hook_sql.delivery(conn, hook_id, delivery_id))
    return _to_summary(row)


def _to_summary(row: Any) -> DeliverySummary:
    return DeliverySummary(
        id=row["id"], event=row["event"], seq=row["seq"], status=row["status"],
        attempt_count=row["attempt_count"], next_attempt_at=_when(row["next_attempt_at"]),
        created_at=row["created_at"], response_status=row["response_status"],
        duration_ms=row["duration_ms"],
    )  # fmt: skip


def _text(data: bytes | None) -> str:
    return bytes(data or b"").decode("utf-8", "replace")


def _when(seconds: float | None) -> str | None:
    """A Unix time as the API's ISO text."""
    return None if seconds is None else iso(datetime.fromtimestamp(seconds, UTC))
