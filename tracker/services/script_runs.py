"""One script run, end to end: who it acts as, the job, the worker, the one unit of work.

    run = await execute(core, org_id, script, Trigger("event", event=..., seq=...), ...)

The run acts as the script identity: the person who saved the script's current
revision (a project admin then), with the rights that person holds NOW in the
project (re-checked every run, so a demoted owner's script fails with the
reason), origin `script` and `meta = {"script", "caused_by", "depth"}` on every
change row. Its effects and its run-log row commit in ONE unit; a refused
effect rolls all effects back and the run is logged as `error` with the reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from tracker.domain.changes import Origin
from tracker.domain.ids import new_id, now_iso
from tracker.domain.permissions import Permission
from tracker.errors import NotFound, RhythmError
from tracker.services.access import read_org
from tracker.services.acting import act_as
from tracker.services.changes import Actor, UnitOfWork, mutate_org
from tracker.services.counters import SCRIPT_RUNS
from tracker.services.notifications import mail_queued
from tracker.services.runtime import Core
from tracker.services.script_effects import (
    EffectRefused,
    ScriptScope,
    SystemRead,
    answer_read,
    apply_effects,
    issue_by_id,
    issue_by_key,
)
from tracker.services.script_email import emails_in
from tracker.storage import orgs as org_sql
from tracker.storage import scripts as script_sql

#: A script run reacting to a person's change runs at depth 1; nothing runs deeper.
MAX_DEPTH = 3


@dataclass(frozen=True)
class Trigger:
    """Why a run happens (the run log's `trigger`)."""

    kind: str  # event | schedule | manual
    event: str | None = None
    seq: int | None = None  # the event's seq: an event run happens once per script and seq
    at: str | None = None  # the schedule tick
    cron: str | None = None
    by: str | None = None  # who started a manual run


def system_bridge(core: Core, loop: asyncio.AbstractEventLoop) -> SystemRead[Any]:
    """Read the system database from a worker or writer thread (never from the loop)."""

    def read(fn: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(core.system.read(fn), loop).result(timeout=10)

    return read


async def script_scope(
    core: Core,
    org_id: str,
    script: dict[str, Any],
    *,
    depth: int = 1,
    caused_by: int | None = None,
) -> ScriptScope:
    """The script identity's rights in its project (`act_as` with the owner's current
    roles and the permission table); NotFound or Forbidden when the owner may no longer
    change issues there."""
    org = await core.system.read(lambda conn: org_sql.org_by_id(conn, org_id))
    if org is None:
        raise NotFound("organization not found")
    key = await read_org(
        core, org_id, lambda conn: script_sql.project_key(conn, script["project_id"])
    )
    if key is None:
        raise NotFound("project not found")
    access, actor = await act_as(
        core, org["slug"], key, script["owner"], Origin.SCRIPT, permission=Permission.ISSUE_UPDATE
    )
    meta: dict[str, Any] = {"script": script["id"], "depth": depth}
    if caused_by is not None:
        meta["caused_by"] = caused_by
    actor = dataclasses.replace(actor, meta=meta)
    bridge = system_bridge(core, asyncio.get_running_loop())
    return ScriptScope(
        org_id, access, actor, bridge, script.get("name", ""), core.settings.notifications_on
    )


def build_job(
    core: Core,
    script: dict[str, Any],
    scope: ScriptScope,
    trigger: Trigger,
    event: dict[str, Any] | None,
    issue: dict[str, Any] | None,
) -> dict[str, Any]:
    project = scope.access.project
    return {
        "mode": "run",
        "source": script["source"],
        "trigger": {"kind": trigger.kind, "event": trigger.event, "cron": trigger.cron},
        "cpu_ms": core.settings.script_timeout_ms,
        "memory_mb": core.settings.script_memory_mb,
        "now": now_iso(),
        "event": event,
        "issue": issue,
        "project": {"key": project.key, "name": project.name},
    }


def wall_deadline(core: Core) -> float:
    """The worker is killed at twice the CPU budget plus a second of wall-clock time."""
    return core.settings.script_timeout_ms * 2 / 1000 + 1.0


async def execute(
    core: Core,
    org_id: str,
    script: dict[str, Any],
    trigger: Trigger,
    *,
    event: dict[str, Any] | None = None,
    issue_id: str | None = None,
    issue_key: str | None = None,
    depth: int = 1,
    run_id: str | None = None,
) -> dict[str, Any] | None:
    """Run `script` once and log it; None when this (script, seq) already ran."""
    started, clock = now_iso(), time.monotonic()
    try:
        scope = await script_scope(core, org_id, script, depth=depth, caused_by=trigger.seq)
    except RhythmError as exc:
        reason = f"the script's owner may no longer change issues here: {exc.detail}"
        result: dict[str, Any] = {"status": "error", "error": reason, "logs": [], "effects": []}
        return await _record(core, org_id, script, trigger, result, None, started, clock, run_id)
    issue = None
    if issue_id is not None:
        issue = await _read(core, org_id, lambda conn: issue_by_id(conn, scope, issue_id))
    elif issue_key is not None:
        issue = await _read(core, org_id, lambda conn: issue_by_key(conn, scope, issue_key))
    loop = asyncio.get_running_loop()

    def answer(message: dict[str, Any]) -> Any:
        coro = _read(
            core,
            org_id,
            lambda conn: answer_read(conn, scope, message),
            owner=f"script:{script['id']}",  # scripts take turns with people for heavy reads
        )
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=wall_deadline(core))

    job = build_job(core, script, scope, trigger, event, issue)
    result = await core.scripts.run_async(job, answer, wall_deadline(core))
    row = await _record(core, org_id, script, trigger, result, scope, started, clock, run_id)
    if row is not None and row["status"] == "ok" and emails_in(result.get("effects") or []):
        mail_queued(core, org_id)  # committed with the run: the sender need not wait
    return row


async def _read(core: Core, org_id: str, fn: Any, *, owner: str | None = None) -> Any:
    """A tenant read; with an owner, a user-driven (time-limited, fair-lane) one."""
    if owner is None:
        return await read_org(core, org_id, fn)
    limit = core.settings.query_time_limit_ms
    return await read_org(core, org_id, fn, time_limit_ms=limit, owner=owner)


async def _record(
    core: Core,
    org_id: str,
    script: dict[str, Any],
    trigger: Trigger,
    result: dict[str, Any],
    scope: ScriptScope | None,
    started: str,
    clock: float,
    run_id: str | None,
) -> dict[str, Any] | None:
    actor = scope.actor if scope is not None else Actor(script["owner"], Origin.SCRIPT)

    def work(uow: UnitOfWork) -> dict[str, Any] | None:
        if trigger.seq is not None and script_sql.ran_for_seq(uow.conn, script["id"], trigger.seq):
            return None
        status, error = result["status"], result.get("error")
        if result.get("line") and error:
            error = f"line {result['line']}: {error}"
        if status == "ok" and scope is not None and result.get("effects"):
            status, error = apply_in_savepoint(uow, scope, result["effects"])
        if trigger.kind == "schedule" and trigger.cron and trigger.at:
            script_sql.set_last_tick(uow.conn, script["id"], trigger.cron, trigger.at)
        row = run_row(
            script,
            trigger,
            status,
            error,
            result.get("logs") or [],
            started,
            clock,
            [c.seq for c in uow.recorded],
            run_id,
        )
        script_sql.insert_run(uow.conn, row)
        return row

    row = await mutate_org(core, org_id, actor, work)
    if row is not None:
        SCRIPT_RUNS[row["status"]] += 1
    return row


async def skip(
    core: Core, org_id: str, script: dict[str, Any], trigger: Trigger, reason: str
) -> dict[str, Any] | None:
    """Log a run that did not happen (load shedding), so nothing is dropped silently."""
    result = {"status": "skipped", "error": reason, "logs": [], "effects": []}
    return await _record(
        core, org_id, script, trigger, result, None, now_iso(), time.monotonic(), None
    )


def apply_in_savepoint(
    uow: UnitOfWork, scope: ScriptScope, effects: list[dict[str, Any]]
) -> tuple[str, str | None]:
    """All of a run's effects or none of them; ("ok", None) or ("error", reason)."""
    mark = len(uow.recorded)
    uow.conn.execute("SAVEPOINT script_effects")
    try:
        apply_effects(uow, scope, effects)
    except EffectRefused as exc:
        uow.conn.execute("ROLLBACK TO script_effects")
        uow.conn.execute("RELEASE script_effects")
        del uow.recorded[mark:]
        return "error", str(exc)
    uow.conn.execute("RELEASE script_effects")
    return "ok", None


def run_row(
    script: dict[str, Any],
    trigger: Trigger,
    status: str,
    error: str | None,
    logs: list[str],
    started: str,
    clock: float,
    changes: list[int],
    run_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": run_id or new_id(),
        "script_id": script["id"],
        "revision": script["revision"],
        "trigger_kind": trigger.kind,
        "trigger_event": trigger.event,
        "trigger_seq": trigger.seq,
        "trigger_at": trigger.at,
        "trigger_by": trigger.by,
        "status": status,
        "started_at": started,
        "duration_ms": int((time.monotonic() - clock) * 1000),
        "logs": logs[:200],
        "error": error,
        "changes": changes,
    }
