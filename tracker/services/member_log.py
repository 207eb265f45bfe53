"""Org-membership writes that are never half-committed (docs/architecture.md).

Org memberships live in the system DB, their change rows in the org's tenant
DB: two files, two transactions. The system transaction that changes
`org_members` also queues an intent in `member_outbox` (what the tenant must
log, under a batch id fixed now). `drain` then writes the tenant side in one
tenant transaction, skipping a batch already in the log, publishes the batch
and deletes the intent. A crash anywhere leaves either nothing or a queued
intent, which the next drain of that org or `replay_member_log` at start
completes: the membership, its change rows and the event all end up existing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from tracker.domain.changes import Actor, Entity, Op
from tracker.domain.ids import new_id, now_iso
from tracker.errors import NotFound
from tracker.services.changes import UnitOfWork, mutate_org
from tracker.storage import member_outbox as outbox_sql
from tracker.storage import projects as project_sql
from tracker.storage.changes import to_json

if TYPE_CHECKING:
    from tracker.services.runtime import Core

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberRecord:
    """One org_member change row to log (project is always None for org memberships)."""

    op: Op
    old: Any = None
    new: Any = None
    field: str | None = None


@dataclass(frozen=True)
class Intent:
    seq: int
    org_id: str
    batch: str
    at: str
    actor: Actor
    user_id: str
    records: tuple[tuple[str, MemberRecord], ...]  # (member user id, record)
    drop_projects_of: str | None


def enqueue(
    conn: sqlite3.Connection,
    org_id: str,
    actor: Actor,
    records: list[tuple[str, MemberRecord]],
    *,
    drop_projects_of: str | None = None,
) -> None:
    """Queue the tenant side of an org-membership change, in the caller's system transaction.

    `records` are (member user id, change) pairs in log order; `drop_projects_of`
    also removes that user's project memberships (logged before the records).
    """
    work = {
        "records": [[uid, r.op, r.field, r.old, r.new] for uid, r in records],
        "drop_projects_of": drop_projects_of,
    }
    outbox_sql.add(conn, {
        "org_id": org_id, "batch": new_id(), "at": now_iso(), "user_id": records[0][0],
        "actor": actor.user_id, "origin": actor.origin, "client_id": actor.client_id,
        "mutation_id": actor.mutation_id, "work": to_json(work),
    })  # fmt: skip


def _intent(row: sqlite3.Row) -> Intent:
    work = json.loads(row["work"])
    records = tuple((uid, MemberRecord(cast(Op, op), old, new, field)) for uid, op, field, old, new
                    in work["records"])  # fmt: skip
    actor = Actor(row["actor"], row["origin"], row["client_id"], row["mutation_id"])
    return Intent(row["seq"], row["org_id"], row["batch"], row["at"], actor, row["user_id"],
                  records, work["drop_projects_of"])  # fmt: skip


def _remover(seq: int) -> Callable[[sqlite3.Connection], None]:
    """The system-DB unit that drops a settled intent (looked up at call time, so a
    crash test can stand in for it)."""
    return lambda conn: outbox_sql.remove(conn, seq)


def _apply(uow: UnitOfWork, intent: Intent) -> bool:
    """Write the intent's change rows under its own batch id, once; False if already there."""
    if outbox_sql.batch_logged(uow.conn, intent.user_id, intent.batch):
        return False
    uow.batch, uow.at = intent.batch, intent.at  # the batch id was fixed at the system commit
    if intent.drop_projects_of is not None:
        for row in project_sql.memberships_of_user(uow.conn, intent.drop_projects_of):
            project_sql.delete_member(uow.conn, row["project_id"], row["user_id"])
            uow.record(Entity.PROJECT_MEMBER, row["user_id"], Op.DELETE, project=row["project_id"],
                       old=dict(row))  # fmt: skip
    for user_id, r in intent.records:
        uow.record(
            Entity.ORG_MEMBER, user_id, r.op, project=None, field=r.field, old=r.old, new=r.new
        )
    return True


async def drain(core: Core, org_id: str) -> int:
    """Apply an org's queued intents in order; returns how many were written here.

    Safe to run concurrently and after a crash: the tenant check and the writes
    are one transaction, so each batch is logged (and published) exactly once.
    """
    written = 0
    for row in await core.system.read(lambda conn: outbox_sql.pending(conn, org_id)):
        intent = _intent(row)
        written += await mutate_org(core, org_id, intent.actor, partial(_apply, intent=intent))
        await core.system.write(_remover(intent.seq))
    return written


async def settle(core: Core, org_id: str) -> None:
    """After an org-membership commit: log it in the tenant; the access cache is dropped anyway.

    If the tenant write fails the error propagates (the intent stays queued for
    the next drain or start), but no lookup cached before the change survives it.
    """
    try:
        await drain(core, org_id)
    finally:
        core.access_cache.invalidate_org(org_id)


async def replay_member_log(core: Core) -> int:
    """At start: complete every intent a crash left queued; returns how many were written."""
    written = 0
    for org_id in await core.system.read(outbox_sql.pending_orgs):
        try:
            written += await drain(core, org_id)
        except NotFound:  # archived: the intents wait for `rhythm org restore`
            log.warning("membership log of org %s waits: its tenant is not here", org_id)
        except Exception:  # one broken tenant must not keep the server from starting
            log.exception("membership log of org %s could not be replayed", org_id)
        core.access_cache.invalidate_org(org_id)
    if written:
        log.warning("replayed %d membership change batch(es) left by a crash", written)
    return written
