"""Sync pull: the change feed by cursor, as the replica's user may see it now, within
the replica's scope, with resets and scope changes (docs/sync.md, "GET pull").

The rows come from the feed's own page reader (`tracker.services.feed.read_page`
with `visibility_in`), in the same read as the client row, the epoch and the
visibility, so a page is one consistent snapshot. Items are serialized straight
from the stored JSON text (never decoded and re-encoded): a pull page is the
change rows as they are stored.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tracker.domain import sync as proto
from tracker.domain.changes import Actor, Origin
from tracker.domain.ids import iso, now_iso, utcnow
from tracker.errors import BadRequest
from tracker.services import feed
from tracker.services.access import OrgAccess, read
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.services.sync_clients import check_client, project_keys, visible_in
from tracker.storage import changes as change_sql
from tracker.storage import sync as sync_sql
from tracker.storage import sync_state

_str = json.JSONEncoder(ensure_ascii=False).encode
#: A pull notes the client as seen at most this often (one write an hour, not per pull).
TOUCH_SECONDS = 3600


@dataclass
class _Read:
    body: dict[str, Any]
    items: list[bytes]
    sent_now: list[str] | None  # the project set to remember, when it changed
    client_id: str
    touch: bool = False  # last seen over an hour ago: note it (the TTL sweep goes by it)


def _json_or_null(text: str | None) -> str:
    return "null" if text is None else text


def _item(change: Any) -> bytes:
    """One change row as JSON, its stored old/new/meta text spliced in as is."""
    t = tuple.__getitem__
    return (
        f'{{"seq":{t(change, 0)},"id":{_str(t(change, 1))},"batch":{_str(t(change, 12))},'
        f'"at":{_str(t(change, 2))},"actor":{_str(t(change, 3))},'
        f'"origin":{_str(t(change, 4))},"entity":{_str(t(change, 5))},'
        f'"entity_id":{_str(t(change, 6))},"project":{_str(t(change, 7))},'
        f'"op":{_str(t(change, 8))},"field":{_str(t(change, 9))},'
        f'"old":{_json_or_null(t(change, 10))},"new":{_json_or_null(t(change, 11))},'
        f'"version":{_str(t(change, 13))},"client_id":{_str(t(change, 15))},'
        f'"mutation_id":{_str(t(change, 16))},"meta":{_json_or_null(t(change, 14))}}}'
    ).encode()


def parse(cursor: str) -> tuple[str, int]:
    try:
        return proto.parse_cursor(cursor)
    except ValueError:
        raise BadRequest("cursor must be '<epoch>.<seq>' as a snapshot or pull handed it out",
                         errors=[{"field": "query.cursor", "message": "not a sync cursor"}]
                         ) from None  # fmt: skip


async def pull(core: Core, access: OrgAccess, query: proto.PullQuery) -> bytes:
    """One pull page as the response body (bytes: built once, not via a model)."""
    epoch_in, seq = parse(query.cursor)
    user_id = access.user_id
    role = await feed.org_role_of(core, access.org.id, user_id) if user_id else None
    org_id = access.org.id

    ttl = core.settings.sync_client_ttl_days
    touch_before = iso(utcnow() - timedelta(seconds=TOUCH_SECONDS))

    def work(conn: sqlite3.Connection) -> _Read:
        client = check_client(conn, query.client_id, user_id, ttl)
        state = sync_state.load(conn)
        head = change_sql.head(conn)
        base: dict[str, Any] = {
            "head": head, "last_mutation_id": client["last_mutation_id"],
            "server_time": now_iso(), "bundles": [],
        }  # fmt: skip
        scope_list = json.loads(client["scope"])
        assert user_id is not None
        visible = visible_in(conn, user_id, role)
        in_scope = visible.ids_for(scope_list)
        sent = set(json.loads(client["sent_projects"]))
        keys = project_keys(conn)
        scope = {
            "projects": sorted(visible.key_of(p, keys) for p in in_scope),
            "added": sorted(visible.key_of(p, keys) for p in in_scope - sent),
            "removed": sorted(keys.get(p, p) for p in sent - in_scope),
        }
        scope["snapshot"] = scope["added"]
        sent_now = sorted(in_scope) if in_scope != sent else None
        reason = None
        if epoch_in != state.epoch or seq > head:
            reason = "epoch"
        elif seq < state.min_seq:
            reason = "compacted"
        elif head - seq > proto.RESET_THRESHOLD:
            reason = "too_far_behind"
        if reason is not None:
            body = {
                **base,
                "cursor": proto.make_cursor(state.epoch, seq),
                "has_more": False,
                "scope": scope,
                "reset": {"reason": reason, "action": "resnapshot"},
            }
            return _Read(body, [], sent_now, client["id"], client["last_seen_at"] < touch_before)
        seen = feed.visibility_in(conn, user_id, role)
        page = feed.read_page(conn, org_id, seq, seen, None, query.limit)
        items = [
            _item(change)
            for batch in page.batches
            for change in batch.changes
            if change.project is None or change.project in in_scope
        ]
        body = {**base, "cursor": proto.make_cursor(state.epoch, page.next_seq),
                "has_more": not page.at_head, "scope": scope, "reset": None}  # fmt: skip
        return _Read(body, items, sent_now, client["id"], client["last_seen_at"] < touch_before)

    got = await read(core, access, work)
    if got.sent_now is not None:
        await remember_projects(core, access, got.client_id, got.sent_now)  # touches it too
    elif got.touch:
        await _touch(core, access, got.client_id)
    head = json.dumps(got.body, ensure_ascii=False)[:-1].encode()
    return head + b',"items":[' + b",".join(got.items) + b"]}"


async def _touch(core: Core, access: OrgAccess, client_id: str) -> None:
    def work(uow: UnitOfWork) -> None:
        sync_sql.touch_client(uow.conn, client_id, uow.at)

    await mutate(core, access, Actor(access.user_id, Origin.SYNC), work)


async def remember_projects(core: Core, access: OrgAccess, client_id: str, ids: list[str]) -> None:
    """Record which projects the replica now holds (the next pull diffs against it)."""

    def work(uow: UnitOfWork) -> None:
        sync_sql.set_sent_projects(uow.conn, client_id, ids, uow.at)

    await mutate(core, access, Actor(access.user_id, Origin.SYNC), work)
