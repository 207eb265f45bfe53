"""Sync push: apply a replica's mutations exactly once, in order (docs/sync.md, "POST push").

Per mutation, ONE tenant transaction holds its effects, its change rows (origin
`sync`, client_id, mutation_id, meta), its stored result and the client's
`last_mutation_id`; a mutation refused by the rules is consumed the same way with
no effects. So a retry after a lost answer is answered from `sync_results` and
nothing runs twice; a crash between mutations leaves a clean prefix applied.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import replace
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from tracker.domain import sync as proto
from tracker.domain.changes import Actor, Origin
from tracker.domain.ids import iso, now_iso, utcnow
from tracker.errors import (
    ClientIdReused,
    Conflict,
    Forbidden,
    MutationGap,
    NotFound,
    PreconditionFailed,
    RhythmError,
    ServiceUnavailable,
    ValidationFailed,
)
from tracker.services.access import OrgAccess, read
from tracker.services.acting import act_as
from tracker.services.changes import UnitOfWork, mutate
from tracker.services.runtime import Core
from tracker.services.sync_clients import check_client, sweep
from tracker.services.sync_mutations import REGISTRY, AlreadyDone, Ctx, Rejected
from tracker.storage import changes as change_sql
from tracker.storage import sync as sync_sql

log = logging.getLogger(__name__)
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


class _Raced(Exception):
    """Another push of the same client advanced the counter first."""


def problem_of(error: RhythmError) -> dict[str, Any]:
    """A rejection's problem details, with the sync code (docs/sync.md, rejection codes)."""
    if isinstance(error, Rejected):
        code, status, title = error.sync_code, error.sync_status, error.sync_title
    elif isinstance(error, NotFound):
        code, status, title = "not_found", 404, "Not found"
    elif isinstance(error, Forbidden):
        code, status, title = "forbidden", 403, "Forbidden"
    elif isinstance(error, ValidationFailed):
        code, status, title = "validation", 422, "Validation failed"
    elif isinstance(error, Conflict | PreconditionFailed):
        code, status, title = "conflict", 409, "Conflict"
    else:
        code, status, title = "validation", error.status, error.title
    problem = {"type": f"https://rhythm.dev/problems/{code.replace('_', '-')}", "title": title,
               "status": status, "code": code, "detail": error.detail}  # fmt: skip
    problem.update(error.extra)
    return problem


def _check_batch(
    conn: sqlite3.Connection, client: dict[str, Any], body: proto.PushIn
) -> dict[int, tuple[str, str]]:
    """Gap and reuse detection for the whole batch before anything runs."""
    last = int(client["last_mutation_id"])
    ids = [m.id for m in body.mutations]
    if not ids:
        return {}
    if ids != list(range(ids[0], ids[0] + len(ids))) or ids[0] > last + 1:
        raise MutationGap(
            f"mutation ids must continue from {last + 1} without gaps", last_mutation_id=last
        )
    stored = sync_sql.stored_results(conn, client["id"], ids[0], min(ids[-1], last))
    for m in body.mutations:
        if m.id > last:
            break
        known = stored.get(m.id)
        if known is not None and known[0] != proto.mutation_hash(m.name, m.v, m.args):
            raise ClientIdReused(
                f"mutation {m.id} differs from the one this client id pushed before: the "
                "replica was copied; register a new client id", last_mutation_id=last,
            )  # fmt: skip
    return stored


async def push(core: Core, access: OrgAccess, body: proto.PushIn) -> dict[str, Any]:
    """Apply the batch; the answer of docs/sync.md (results in id order)."""
    user_id = access.user_id

    ttl = core.settings.sync_client_ttl_days

    def start(conn: sqlite3.Connection) -> tuple[dict[str, Any], dict[int, tuple[str, str]]]:
        client = check_client(conn, body.client_id, user_id, ttl)
        return client, _check_batch(conn, client, body)

    client, stored = await read(core, access, start)
    last = int(client["last_mutation_id"])
    results: list[dict[str, Any]] = []
    incomplete = False
    for m in body.mutations:
        if m.id <= last:
            known = stored.get(m.id)
            if known is None:  # answered longer ago than results are kept
                results.append({"id": m.id, "status": "noop", "replayed": True,
                                "result_expired": True})  # fmt: skip
            else:
                results.append({**json.loads(known[1]), "replayed": True})
            continue
        definition = REGISTRY.get((m.name, m.v))
        if definition is None:
            results.append({"id": m.id, "status": "deferred",
                            "detail": f"this server does not know {m.name}@{m.v} yet"})  # fmt: skip
            break
        try:
            results.append(await _apply_one(core, access, client["id"], m, definition))
        except (_Raced, ServiceUnavailable, sqlite3.OperationalError) as exc:
            log.warning("sync push stopped at mutation %s: %s", m.id, exc)
            incomplete = True
            break
        last = m.id
    if results and not incomplete:  # a busy database would refuse the prune too
        try:
            await _prune(core, access, client["id"])
        except (ServiceUnavailable, sqlite3.OperationalError) as exc:  # housekeeping only
            log.warning("sync push: stored answers not pruned this time: %s", exc)
    head_now = await read(core, access, change_sql.head)
    return {"last_mutation_id": last, "head": head_now, "server_time": now_iso(),
            "incomplete": incomplete, "results": results}  # fmt: skip


async def _prune(core: Core, access: OrgAccess, client_id: str) -> None:
    """Drop this client's stored answers past the retention, and expire the org's clients
    unseen for RHYTHM_SYNC_CLIENT_TTL_DAYS (docs/sync.md), in the one write it makes."""
    cutoff = iso(utcnow() - timedelta(days=proto.RESULT_RETENTION_DAYS))
    ttl = core.settings.sync_client_ttl_days

    def work(uow: UnitOfWork) -> None:
        sync_sql.prune_results(uow.conn, client_id, cutoff)
        sweep(uow.conn, ttl, uow.at)

    await mutate(core, access, Actor(access.user_id, Origin.SYNC), work)


async def _apply_one(
    core: Core, access: OrgAccess, client_id: str, m: proto.MutationIn, definition: Any
) -> dict[str, Any]:
    """Apply one mutation (or consume it as rejected), its result stored in the same unit."""
    digest = proto.mutation_hash(m.name, m.v, m.args)
    meta = {"client_at": m.at} if m.at else None
    sync_actor = Actor(access.user_id, Origin.SYNC, client_id, m.id, meta)
    try:
        args = definition.args.model_validate(m.args)
    except ValidationError as exc:
        return await _consume(core, access, sync_actor, m, digest,
                              ValidationFailed.from_pydantic(exc, prefix="args."))  # fmt: skip
    try:
        target = await read(core, access, lambda conn: definition.locate(conn, args))
        project_access, _ = await act_as(core, access.org.slug, target.project_key,
                                         access.user_id, Origin.SYNC,
                                         permission=definition.permission)  # fmt: skip
        ctx = Ctx(core, args, project_access, sync_actor, client_id, target)
        if definition.prepare is not None:
            await definition.prepare(ctx)
    except AlreadyDone:
        return await _consume(core, access, sync_actor, m, digest, None)
    except ServiceUnavailable:
        raise
    except NotFound as exc:
        # existence does not leak: an invisible project reads as "not found"
        return await _consume(core, access, sync_actor, m, digest, exc)
    except RhythmError as exc:
        if isinstance(exc, Forbidden) and not isinstance(exc, Rejected):
            exc = Forbidden(f"{exc.detail} (in {target.project_key})")
        return await _consume(core, access, sync_actor, m, digest, exc)

    def work(uow: UnitOfWork) -> dict[str, Any]:
        fields = definition.apply(ctx, uow)
        result: dict[str, Any] = {"id": m.id, **fields}
        if uow.recorded:
            result["seqs"] = [uow.recorded[0].seq, uow.recorded[-1].seq]
        _finish(uow, client_id, m.id, digest, result)
        return result

    try:
        return await mutate(core, project_access, sync_actor, work)
    except (_Raced, ServiceUnavailable):
        raise
    except RhythmError as exc:
        return await _consume(core, access, sync_actor, m, digest, exc)


def _finish(
    uow: UnitOfWork, client_id: str, mutation_id: int, digest: str, result: dict[str, Any]
) -> None:
    try:
        sync_sql.advance_mutation(uow.conn, client_id, mutation_id, uow.at)
    except RuntimeError:
        raise _Raced() from None
    sync_sql.store_result(uow.conn, client_id, mutation_id, digest, _encode(result), uow.at)


async def _consume(
    core: Core, access: OrgAccess, actor: Actor, m: proto.MutationIn, digest: str,
    error: RhythmError | None,
) -> dict[str, Any]:  # fmt: skip
    """Store a rejected (or already-holding) mutation's answer and advance the counter."""
    if error is None:
        result: dict[str, Any] = {"id": m.id, "status": "noop"}
    else:
        result = {"id": m.id, "status": "rejected", "problem": problem_of(error)}
    client_id = actor.client_id
    assert client_id is not None

    def work(uow: UnitOfWork) -> dict[str, Any]:
        _finish(uow, client_id, m.id, digest, result)
        return result

    return await mutate(core, access, replace(actor, meta=None), work)
