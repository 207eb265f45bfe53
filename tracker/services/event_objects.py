"""Render committed batches into SPEC §7 event objects, serialized once.

The WebSocket hub sends `Event.frame` (the object with `"type": "event"`) to
every subscriber of the project, and webhook delivery POSTs `Event.body` (the
same object without `type`): both are bytes made once per event here, never per
subscriber. The issue summary and the project key are read in one tenant read
per call, the actors' display names in one system read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tracker.domain.changes import ChangeBatch
from tracker.domain.events import Group, changes_of, event_name, groups_of
from tracker.services.access import read_org
from tracker.services.runtime import Core
from tracker.storage import summaries as summary_sql
from tracker.storage import users as user_sql

_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


@dataclass(frozen=True)
class Event:
    """One event: its routing facts and its two serialized forms."""

    seq: int
    name: str
    project_id: str
    project_key: str
    issue_id: str | None
    body: bytes  # the webhook body: the event object
    frame: bytes  # the WebSocket frame: the same object with "type": "event" first

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.body)


async def render(core: Core, org_id: str, batches: Sequence[ChangeBatch]) -> list[Event]:
    """The events of `batches`, in seq order (one per batch and issue or entity)."""
    grouped = [(batch, group) for batch in batches for group in groups_of(batch.changes)]
    if not grouped:
        return []
    issue_ids = sorted({g.issue for _, g in grouped if g.issue})
    project_ids = sorted({g.project for _, g in grouped})

    def read(conn: sqlite3.Connection) -> tuple[dict[str, str], dict[str, str]]:
        return (
            summary_sql.project_keys(conn, project_ids),
            summary_sql.issue_summary_texts(conn, issue_ids),
        )

    keys, issues = await read_org(core, org_id, read)
    actor_ids = sorted({b.changes[0].actor for b, _ in grouped if b.changes[0].actor})
    names = await _display_names(core, actor_ids)
    return [_event(batch, group, keys, issues, names) for batch, group in grouped]


async def _display_names(core: Core, user_ids: list[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = await core.system.read(lambda conn: user_sql.users_by_ids(conn, user_ids))
    return {row["id"]: row["display_name"] or row["email"] for row in rows}


def _event(
    batch: ChangeBatch,
    group: Group,
    keys: dict[str, str],
    issues: dict[str, str],
    names: dict[str, str],
) -> Event:
    first = batch.changes[0]
    name = event_name(group)
    key = keys.get(group.project, "")
    issue = "null"
    if group.issue:  # SQLite's JSON text, spliced in (no decode + encode per event)
        issue = issues.get(group.issue) or _encode({"id": group.issue})  # purged: the id
    head = {
        "seq": group.seq,
        "batch": batch.batch,
        "at": first.at,
        "actor": None if first.actor is None else {
            "id": first.actor, "display_name": names.get(first.actor, "")},
        "origin": str(first.origin),
        "project": key,
        "event": name,
    }  # fmt: skip
    body = f'{_encode(head)[:-1]},"issue":{issue},"changes":{_encode(changes_of(group))}}}'
    frame = '{"type":"event",' + body[1:]
    return Event(group.seq, name, group.project, key, group.issue, body.encode(), frame.encode())


def render_in(conn: sqlite3.Connection, batch: ChangeBatch) -> list[Event]:
    """`render` for code already on the tenant's thread (a preview's rolled-back unit):
    the same objects, read with `conn`; actors' display names are left empty (they
    live in the system database)."""
    grouped = groups_of(batch.changes)
    if not grouped:
        return []
    keys = summary_sql.project_keys(conn, sorted({g.project for g in grouped}))
    issues = summary_sql.issue_summary_texts(conn, sorted({g.issue for g in grouped if g.issue}))
    return [_event(batch, group, keys, issues, {}) for group in grouped]
